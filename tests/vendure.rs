//! The Vendure bridge against a real Vendure 3.7.3 (`integrations/vendure/server.js`, started
//! here on a random loopback port with a fresh database). One Vendure for the whole binary:
//! its first boot with the sample data takes about a minute, so the cases run in sequence
//! in one test. Skipped (with a message) only when `node` is not installed.

use fast_seller::commerce::vendure::{
    Address, Auth, Customer, OrderLine, PlaceOrder, TaxZoneStrategy, VendureClient, VendureError,
};
use fast_seller::domain::vendure_pricing::price_order;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Vendure {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Vendure {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_installed() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the pinned packages if needed and starts a demo Vendure; `None` without Node.
fn start_vendure() -> Option<Vendure> {
    if !node_installed() {
        eprintln!("SKIPPED: the Vendure tests need Node.js 20+ (`node` is not installed)");
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integrations/vendure");
    if !dir.join("node_modules").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm ci runs");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new("node")
        .arg("server.js")
        .current_dir(&dir)
        .env("VENDURE_PORT", port.to_string())
        .env("VENDURE_DATA_DIR", data.path())
        .env("VENDURE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("node server.js starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("fast-seller-vendure ready on") {
                let _ = tx.send(line.clone());
            }
            eprintln!("vendure: {line}");
        }
    });
    let vendure = Vendure {
        child,
        url: format!("http://127.0.0.1:{port}/admin-api"),
        _data: data,
    };
    let ready = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("Vendure printed its ready line within 10 minutes");
    eprintln!("{ready}");
    Some(vendure)
}

/// Test set-up calls that fast-seller itself never makes (a superadmin session).
struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    async fn login(url: &str) -> Admin {
        let http = reqwest::Client::new();
        let res = http
            .post(url)
            .json(&json!({
                "query": "mutation { login(username: \"superadmin\", password: \"superadmin\") { __typename } }"
            }))
            .send()
            .await
            .unwrap();
        let token = res.headers()["vendure-auth-token"]
            .to_str()
            .unwrap()
            .to_owned();
        Admin {
            http,
            url: url.to_owned(),
            token,
        }
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let body: Value = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }
}

fn address(country: &str) -> Address {
    Address {
        full_name: "Ada Lovelace".into(),
        company: None,
        street_line1: "1 Main Street".into(),
        street_line2: None,
        city: "Springfield".into(),
        province: None,
        postal_code: "12345".into(),
        country_code: country.into(),
        phone_number: None,
    }
}

#[test]
fn vendure_bridge() {
    let Some(vendure) = start_vendure() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(cases(&vendure.url));
}

async fn cases(url: &str) {
    let admin = Admin::login(url).await;

    // An API key with a role, as a merchant sets fast-seller up.
    let role = admin
        .gql(
            "mutation($p: [Permission!]!) { createRole(input: { code: \"fast-seller\", description: \"fast-seller\", permissions: $p }) { id } }",
            json!({ "p": ["CreateOrder", "ReadOrder", "UpdateOrder", "DeleteOrder", "ReadCatalog", "ReadCustomer",
                          "CreateCustomer", "UpdateCustomer", "ReadSettings", "ReadPromotion", "ReadShippingMethod",
                          "ReadTaxRate", "ReadTaxCategory", "ReadZone", "ReadCountry", "ReadChannel", "ReadPaymentMethod"] }),
        )
        .await;
    let key = admin
        .gql(
            "mutation($r: [ID!]!) { createApiKey(input: { roleIds: $r, translations: [{ languageCode: en, name: \"fast-seller\" }] }) { apiKey } }",
            json!({ "r": [role["createRole"]["id"]] }),
        )
        .await["createApiKey"]["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // Promotions: two the bridge maps, one it cannot.
    for (code, conditions, actions) in [
        (
            "PCT15",
            json!([]),
            json!([{ "code": "order_percentage_discount", "arguments": [{ "name": "discount", "value": "15" }] }]),
        ),
        (
            "FREESHIP",
            json!([{ "code": "minimum_order_amount", "arguments": [{ "name": "amount", "value": "10000" }, { "name": "taxInclusive", "value": "true" }] }]),
            json!([{ "code": "free_shipping", "arguments": [] }]),
        ),
        (
            "FACETS",
            json!([]),
            json!([{ "code": "facet_based_discount", "arguments": [{ "name": "discount", "value": "10" }, { "name": "facets", "value": "[\"1\"]" }] }]),
        ),
    ] {
        let created = admin
            .gql(
                "mutation($i: CreatePromotionInput!) { createPromotion(input: $i) { __typename ... on ErrorResult { message } } }",
                json!({ "i": { "enabled": true, "couponCode": code, "conditions": conditions, "actions": actions,
                               "translations": [{ "languageCode": "en", "name": code }] } }),
            )
            .await;
        assert_eq!(
            created["createPromotion"]["__typename"], "Promotion",
            "{created}"
        );
    }

    let by_key = VendureClient::new(url, Auth::ApiKey(key), None).unwrap();
    let by_login = VendureClient::new(
        url,
        Auth::Login {
            username: "superadmin".into(),
            password: "superadmin".into(),
        },
        None,
    )
    .unwrap();

    // ---- catalog ----
    let t0 = Instant::now();
    let catalog = by_key.catalog().await.unwrap();
    eprintln!(
        "catalog sync: {} variants in {} ms",
        catalog.variants.len(),
        t0.elapsed().as_millis()
    );
    // 88 variants; the sample data gives three of them the SKU 404.038.96: Fast names a
    // variant by SKU, so the first is mapped and the other two are listed as unmapped.
    assert_eq!(catalog.variants.len(), 86, "{:?}", catalog.unmapped);
    assert_eq!(catalog.channel.currency, "USD");
    assert!(!catalog.channel.prices_include_tax);
    assert_eq!(catalog.zones.len(), 5);
    assert!(catalog
        .zones
        .iter()
        .any(|z| z.name == "Europe" && z.countries.iter().any(|c| c == "DE")));
    assert_eq!(catalog.tax_categories.len(), 3);
    assert_eq!(catalog.tax_rates.len(), 15);
    let codes: Vec<(&str, i64)> = catalog
        .shipping_methods
        .iter()
        .map(|m| (m.code.as_str(), m.flat_rate.rate))
        .collect();
    assert_eq!(
        codes,
        [("standard-shipping", 500), ("express-shipping", 1000)]
    );
    let laptop = catalog.variant_by_sku("L2201308").unwrap();
    assert_eq!(laptop.product_slug, "laptop");
    assert_eq!(laptop.price, 129_900);
    assert_eq!(laptop.stock.available, Some(100));
    assert_eq!(laptop.options.len(), 2, "{:?}", laptop.options);
    let coupons: Vec<_> = catalog
        .promotions
        .iter()
        .filter_map(|p| p.coupon_code.as_deref())
        .collect();
    assert_eq!(coupons, ["PCT15", "FREESHIP"]);
    assert_eq!(catalog.unmapped.len(), 3, "{:?}", catalog.unmapped);
    for (unmapped, variant) in catalog.unmapped.iter().zip(["87", "88"]) {
        assert_eq!(unmapped.what, format!("variant {variant} (404.038.96)"));
        assert_eq!(unmapped.why, "SKU also used by variant 86");
    }
    assert!(catalog.unmapped[2].what.contains("FACETS"));
    assert!(catalog.unmapped[2].why.contains("facet_based_discount"));

    // ---- placement ----
    let lines = [("L2201308", 1), ("B07K1330LL", 2)];
    let cart = catalog
        .cart(
            "US",
            TaxZoneStrategy::Address,
            &lines,
            &["PCT15"],
            Some("express-shipping"),
        )
        .unwrap();
    let want = price_order(&cart);
    let fast_order_id = format!("fast-{}", std::process::id());
    let order = PlaceOrder {
        fast_order_id: fast_order_id.clone(),
        customer: Customer {
            id: String::new(),
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            phone_number: None,
        },
        shipping_address: address("US"),
        billing_address: address("US"),
        lines: lines
            .iter()
            .map(|(sku, quantity)| OrderLine {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        coupon_codes: vec!["PCT15".into()],
        shipping_method: "express-shipping".into(),
        payment_method: "fast".into(),
        charged_total: want.total_with_tax,
    };
    let t0 = Instant::now();
    let placed = by_login.place_order(&order).await.unwrap();
    eprintln!("placement: {} ms ({placed:?})", t0.elapsed().as_millis());
    assert_eq!(placed.state, "PaymentSettled");
    assert!(!placed.already_placed && !placed.resumed && !placed.mismatch);
    assert_eq!(
        [
            placed.sub_total,
            placed.sub_total_with_tax,
            placed.shipping,
            placed.shipping_with_tax,
            placed.total_with_tax
        ],
        [
            want.sub_total,
            want.sub_total_with_tax,
            want.shipping,
            want.shipping_with_tax,
            want.total_with_tax
        ]
    );

    // The same Fast order again: the same Vendure order, no second one.
    let t0 = Instant::now();
    let again = by_key.place_order(&order).await.unwrap();
    eprintln!("placement found again: {} ms", t0.elapsed().as_millis());
    assert!(again.already_placed);
    assert_eq!(
        (again.code.as_str(), again.total_with_tax),
        (placed.code.as_str(), placed.total_with_tax)
    );
    let orders = admin
        .gql(
            "query($f: String!) { orders(options: { filter: { fastOrderId: { eq: $f } } }) { totalItems items { code state customer { emailAddress } } } }",
            json!({ "f": fast_order_id }),
        )
        .await;
    assert_eq!(orders["orders"]["totalItems"], 1, "{orders}");
    assert_eq!(orders["orders"]["items"][0]["code"], placed.code.as_str());
    assert_eq!(
        orders["orders"]["items"][0]["customer"]["emailAddress"],
        "ada@example.com"
    );

    // A draft left half-placed by a crash (fastOrderId and an address set) is completed.
    let draft = admin
        .gql("mutation { createDraftOrder { id } }", json!({}))
        .await["createDraftOrder"]["id"]
        .clone();
    let half = format!("fast-{}-half", std::process::id());
    admin
        .gql(
            "mutation($o: ID!, $f: String!) { setDraftOrderCustomFields(orderId: $o, input: { id: $o, customFields: { fastOrderId: $f } }) { id } }",
            json!({ "o": draft, "f": half }),
        )
        .await;
    let resumed = by_key
        .place_order(&PlaceOrder {
            fast_order_id: half,
            ..order.clone()
        })
        .await
        .unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.id, draft.as_str().unwrap());
    assert_eq!(
        (resumed.state.as_str(), resumed.total_with_tax),
        ("PaymentSettled", want.total_with_tax)
    );

    // ---- stock, customers, errors ----
    let stock = by_key
        .stock(&["L2201308".into(), "NO-SUCH-SKU".into()])
        .await
        .unwrap();
    assert_eq!(stock.len(), 1);
    let laptop = stock["L2201308"];
    assert_eq!(laptop.on_hand, 100);
    assert_eq!(laptop.allocated, 2, "two orders placed");
    assert_eq!(laptop.available, Some(98));

    let ada = by_key
        .customer_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ada.first_name.as_str(), ada.last_name.as_str()),
        ("Ada", "Lovelace")
    );
    assert_eq!(
        by_key
            .customer_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );

    let unknown_sku = by_key
        .place_order(&PlaceOrder {
            fast_order_id: format!("fast-{}-unknown", std::process::id()),
            lines: vec![OrderLine {
                sku: "NO-SUCH-SKU".into(),
                quantity: 1,
            }],
            ..order.clone()
        })
        .await;
    assert!(
        matches!(unknown_sku, Err(VendureError::NotFound { .. })),
        "{unknown_sku:?}"
    );
    let wrong_key = VendureClient::new(url, Auth::ApiKey("wrong".into()), None).unwrap();
    let refused = wrong_key.catalog().await;
    assert!(
        matches!(refused, Err(VendureError::Forbidden { .. })),
        "{refused:?}"
    );
    let down = VendureClient::new(
        "http://127.0.0.1:9/admin-api",
        Auth::ApiKey("k".into()),
        None,
    )
    .unwrap();
    let unreachable = down.catalog().await;
    assert!(
        unreachable.as_ref().is_err_and(VendureError::is_transient),
        "{unreachable:?}"
    );
}
