//! The Vendure bridge against a real Vendure 3.7.3 (`integrations/vendure/server.js`, started
//! here on a random loopback port with a fresh database). One Vendure for the whole binary:
//! its first boot with the sample data takes about a minute, so the cases run in sequence
//! in one test. Skipped (with a message) only when `node` is not installed.

use fast_seller::commerce::vendure::{
    Address, Auth, Customer, OrderLine, PlaceOrder, TaxZoneStrategy, VendureClient, VendureError,
};
use fast_seller::domain::vendure_pricing::price_order;

#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{http_client, post_ok, show, ServerProcess};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Vendure {
    child: Option<Child>,
    url: String,
    port: u16,
    data: tempfile::TempDir,
}

impl Vendure {
    /// `node server.js` on this Vendure's port and database; returns once it printed its
    /// ready line.
    fn run(&mut self) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integrations/vendure");
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(&dir)
            .env("VENDURE_PORT", self.port.to_string())
            .env("VENDURE_DATA_DIR", self.data.path())
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
        self.child = Some(child);
        let ready = rx
            .recv_timeout(Duration::from_secs(600))
            .expect("Vendure printed its ready line within 10 minutes");
        eprintln!("{ready}");
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Vendure {
    fn drop(&mut self) {
        self.kill();
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
    let mut vendure = Vendure {
        child: None,
        url: format!("http://127.0.0.1:{port}/admin-api"),
        port,
        data: tempfile::tempdir().unwrap(),
    };
    vendure.run();
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

    /// An enabled promotion with this coupon code.
    async fn create_promotion(&self, code: &str, conditions: Value, actions: Value) {
        let created = self
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
    let Some(mut vendure) = start_vendure() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = vendure.url.clone();
        let key = cases(&url).await;
        through_fast_seller(&mut vendure, &key).await;
    });
}

/// The adapter's calls one by one; returns the API key it made for fast-seller.
async fn cases(url: &str) -> String {
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
        admin.create_promotion(code, conditions, actions).await;
    }

    let by_key = VendureClient::new(url, Auth::ApiKey(key.clone()), None).unwrap();
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
        .price_book(TaxZoneStrategy::Address)
        .cart(Some("US"), &lines, &["PCT15"], Some("express-shipping"))
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
    key
}

/// Makes zones and tax categories matter (as `integrations/vendure/verify.js` does) and adds
/// the coupons of each supported kind that `cases` did not.
async fn vary_tax_and_promotions(admin: &Admin) {
    let tax = admin
        .gql(
            "{ taxRates(options: { take: 100 }) { items { id name } } taxCategories { items { id name } } }",
            json!({}),
        )
        .await;
    let rate_id = |name: &str| {
        tax["taxRates"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no tax rate {name}: {tax}"))["id"]
            .clone()
    };
    for (name, value) in [
        ("Standard Tax Americas", 8.875),
        ("Standard Tax Oceania", 15.0),
        ("Reduced Tax Asia", 8.0),
        ("Reduced Tax Europe", 7.0),
    ] {
        admin
            .gql(
                "mutation($id: ID!, $v: Float!) { updateTaxRate(input: { id: $id, value: $v }) { id } }",
                json!({ "id": rate_id(name), "v": value }),
            )
            .await;
    }
    let category = |name: &str| {
        tax["taxCategories"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no tax category {name}: {tax}"))["id"]
            .clone()
    };
    let mut input: Vec<Value> = (5..=10)
        .map(|id| json!({ "id": id.to_string(), "taxCategoryId": category("Reduced Tax") }))
        .collect();
    input.extend(
        (11..=12).map(|id| json!({ "id": id.to_string(), "taxCategoryId": category("Zero Tax") })),
    );
    admin
        .gql(
            "mutation($i: [UpdateProductVariantInput!]!) { updateProductVariants(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    for (code, conditions, actions) in [
        (
            "FIX1000",
            json!([{ "code": "minimum_order_amount", "arguments": [{ "name": "amount", "value": "5000" }, { "name": "taxInclusive", "value": "false" }] }]),
            json!([{ "code": "order_fixed_discount", "arguments": [{ "name": "discount", "value": "1000" }] }]),
        ),
        (
            "PROD25",
            json!([]),
            json!([{ "code": "products_percentage_discount", "arguments": [{ "name": "discount", "value": "25" }, { "name": "productVariantIds", "value": "[\"1\",\"5\",\"20\"]" }] }]),
        ),
    ] {
        admin.create_promotion(code, conditions, actions).await;
    }
}

/// One Fast checkout: lines `(SKU, quantity)`, shipped to `country`, with an optional coupon
/// and shipping method (none: the pre-selected cheapest).
struct Checkout {
    country: &'static str,
    lines: &'static [(&'static str, i64)],
    coupon: Option<&'static str>,
    shipping: Option<&'static str>,
}

const fn cart(
    country: &'static str,
    lines: &'static [(&'static str, i64)],
    coupon: Option<&'static str>,
    shipping: Option<&'static str>,
) -> Checkout {
    Checkout {
        country,
        lines,
        coupon,
        shipping,
    }
}

/// Zones (Americas, Europe, Oceania, Asia), the three tax categories, each coupon kind, both
/// shipping methods and multi-quantity lines.
const CARTS: &[Checkout] = &[
    cart("DE", &[("L2201308", 1)], None, None),
    cart(
        "DE",
        &[("L2201508", 3), ("TBL200032", 2)],
        None,
        Some("express-shipping"),
    ),
    cart("US", &[("L2201308", 1)], None, None),
    cart(
        "US",
        &[("CMK32GX4M2AC16", 3), ("B07K1330LL", 7), ("TBL200032", 1)],
        None,
        None,
    ),
    cart(
        "US",
        &[("A4TKLA45535", 2), ("CMK32GX4M2AC04", 1)],
        Some("PCT15"),
        Some("express-shipping"),
    ),
    cart(
        "AU",
        &[
            ("CMK32GX4M2AC16", 1),
            ("CGS480VR1063", 2),
            ("CGS480VR1064", 3),
        ],
        Some("PCT15"),
        None,
    ),
    cart(
        "JP",
        &[("TBL200032", 3), ("TBL200128", 1), ("SC3137-056", 2)],
        Some("FIX1000"),
        None,
    ),
    cart("JP", &[("SC3137-056", 1)], Some("FIX1000"), None),
    cart(
        "US",
        &[("L2201308", 1), ("TBL200032", 2), ("B07K1330LL", 1)],
        Some("PROD25"),
        Some("express-shipping"),
    ),
    cart(
        "DE",
        &[("IHD455T3", 3), ("IHD455T4", 1)],
        Some("PROD25"),
        None,
    ),
    cart(
        "AU",
        &[("LU32J590UQUXEN", 4), ("RS0044", 1)],
        Some("FREESHIP"),
        Some("express-shipping"),
    ),
    cart(
        "DE",
        &[("AR4561-42", 1)],
        Some("FREESHIP"),
        Some("express-shipping"),
    ),
    cart(
        "US",
        &[("B07D990021", 9), ("B07D33B334", 11), ("B07D75V44S", 1)],
        Some("FIX1000"),
        None,
    ),
    cart(
        "AU",
        &[("CMK32GX4M2AC04", 2), ("CMK32GX4M2AC08", 5)],
        None,
        None,
    ),
    cart("GB", &[("TBL200128", 2)], Some("PCT15"), None),
    cart(
        "BR",
        &[("C24F390", 1), ("RS0044", 2)],
        Some("FIX1000"),
        Some("express-shipping"),
    ),
    cart(
        "CN",
        &[("TBL200032", 1), ("CMK32GX4M2AC08", 1)],
        Some("PROD25"),
        None,
    ),
    cart("NZ", &[("B07K1330LL", 12)], None, Some("express-shipping")),
    cart("FR", &[("AR4561-46", 5)], Some("FREESHIP"), None),
    cart(
        "US",
        &[("SC3137-056", 4), ("AR4561-42", 2)],
        Some("PCT15"),
        None,
    ),
];

fn fast_address(country: &str, email: &str) -> Value {
    json!({"first_name": "Ada", "last_name": "Lovelace", "email": email, "phone": "555-0100",
           "address_1": "1 Main Street", "city_locality": "Springfield", "postal_code": "12345",
           "country": country, "country_code": country})
}

/// The order of an update answer whose segments all applied.
fn applied(r: helpers::Resp, fast_id: &str) -> Value {
    let order = r.order();
    assert!(
        order["status"]
            .as_array()
            .is_none_or(|s| s.iter().all(|x| x["status"] == true)),
        "{fast_id}: {}",
        show(&r)
    );
    order
}

/// Runs `checkout` through fast-seller's Fast endpoints; returns Fast's converted order.
async fn run_checkout(
    http: &reqwest::Client,
    base: &str,
    fast_id: &str,
    checkout: &Checkout,
    slug_of: &dyn Fn(&str) -> String,
) -> Value {
    let lines: Vec<Value> = checkout
        .lines
        .iter()
        .enumerate()
        .map(|(i, (sku, quantity))| {
            json!({"id": {"value": format!("{fast_id}-l{i}")}, "external_product_id": slug_of(sku),
                   "external_variant_id": sku, "quantity": quantity})
        })
        .collect();
    let create = json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
        "request_id": {"value": format!("{fast_id}-c")},
        "order": {"is_cart": true, "order": {"id": {"value": fast_id}, "order_type": "ORDER_TYPE_CART",
                  "status": "ORDER_STATUS_CART", "bill_to": {}, "lines": lines}}});
    let r = post_ok(http, base, "create", &create).await;
    assert_eq!(r.status, 200, "{fast_id} create: {}", show(&r));
    let email = format!("{}@example.com", fast_id.to_lowercase());
    let to = fast_address(checkout.country, &email);
    let mut steps = vec![
        json!({"bill_to": to}),
        json!({"shipments": [{"ship_to": to}]}),
    ];
    if let Some(code) = checkout.coupon {
        steps.push(json!({"coupon": {"code": code}}));
    }
    let mut order = Value::Null;
    for (i, segment) in steps.into_iter().enumerate() {
        let body = helpers::update_body(&format!("{fast_id}-u{i}"), fast_id, segment);
        order = applied(post_ok(http, base, "update", &body).await, fast_id);
    }
    if let Some(method) = checkout.shipping {
        let plan = order["shipment_plans"][0]["external_id"].clone();
        let body = helpers::update_body(
            &format!("{fast_id}-ship"),
            fast_id,
            json!({"shipping_option": {"plan_id": {"value": plan}, "external_option_id": method}}),
        );
        applied(post_ok(http, base, "update", &body).await, fast_id);
    }
    let body = helpers::update_body(
        &format!("{fast_id}-convert"),
        fast_id,
        json!({"convert_cart_to_order": true}),
    );
    let r = post_ok(http, base, "update", &body).await;
    let converted = r.order();
    assert_eq!(
        converted["order_type"],
        "ORDER_TYPE_ORDER",
        "{fast_id}: {}",
        show(&r)
    );
    converted
}

/// `"1234.50"` → 123450.
fn minor(amount: &Value) -> i64 {
    let s = amount
        .as_str()
        .unwrap_or_else(|| panic!("not an amount: {amount}"));
    let (units, cents) = s.split_once('.').unwrap_or((s, "00"));
    assert_eq!(cents.len(), 2, "{s}");
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// fast-seller with `--backend vendure`: the catalog comes from Vendure and each converted
/// cart becomes exactly one Vendure order in PaymentSettled whose total is Fast's.
async fn through_fast_seller(vendure: &mut Vendure, key: &str) {
    let url = vendure.url.clone();
    let url = url.as_str();
    let admin = Admin::login(url).await;
    vary_tax_and_promotions(&admin).await;
    let catalog = VendureClient::new(url, Auth::ApiKey(key.into()), None)
        .unwrap()
        .catalog()
        .await
        .unwrap();
    let slug_of = |sku: &str| {
        catalog
            .variant_by_sku(sku)
            .unwrap_or_else(|| panic!("no variant {sku}"))
            .product_slug
            .clone()
    };
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--data-dir",
        data.path().to_str().unwrap(),
        "--backend",
        "vendure",
        "--vendure-url",
        url,
    ];
    let server = ServerProcess::start_with(&args, &[("FAST_SELLER_VENDURE_API_KEY", key)]).await;
    let http = http_client();
    let base = server.base();
    let ready: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["catalog"]["source"], "vendure", "{ready}");
    // The demo server taxes by the address's zone; --vendure-tax-zone auto found that out.
    assert!(
        server
            .output()
            .contains("tax zone strategy, found out with a draft order")
            && server.output().contains("Address"),
        "{}",
        server.output()
    );

    let run = std::process::id();
    let t0 = Instant::now();
    let mut charged = Vec::new();
    for (i, checkout) in CARTS.iter().enumerate() {
        let fast_id = format!("F{run}-{i:02}");
        let order = run_checkout(&http, &base, &fast_id, checkout, &slug_of).await;
        charged.push((fast_id, minor(&order["total_amount"]), checkout));
    }
    eprintln!(
        "{} checkouts through fast-seller in {} ms",
        CARTS.len(),
        t0.elapsed().as_millis()
    );

    // Each conversion reaches Vendure through the outbox, once. Placements run two at a time
    // and take 1–2 s each on an idle machine, up to a minute when it is loaded.
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut mismatches = Vec::new();
    for (fast_id, total, checkout) in &charged {
        let found = loop {
            let orders = admin
                .gql(
                    "query($f: String!) { orders(options: { filter: { fastOrderId: { eq: $f } } }) { totalItems items { code state totalWithTax couponCodes shippingAddress { countryCode } lines { quantity productVariant { sku } } shippingLines { shippingMethod { code } } customer { emailAddress } } } }",
                    json!({ "f": fast_id }),
                )
                .await;
            let n = orders["orders"]["totalItems"].as_i64().unwrap();
            if n > 0 && orders["orders"]["items"][0]["state"] == "PaymentSettled" {
                assert_eq!(
                    n, 1,
                    "{fast_id}: one Vendure order per conversion: {orders}"
                );
                break orders["orders"]["items"][0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{fast_id} did not reach Vendure in PaymentSettled: {orders}\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let booked = found["totalWithTax"].as_i64().unwrap();
        if booked != *total {
            mismatches.push(format!(
                "{fast_id}: Fast charged {total}, Vendure booked {booked}"
            ));
        }
        assert_eq!(found["shippingAddress"]["countryCode"], checkout.country);
        assert_eq!(
            found["customer"]["emailAddress"],
            format!("{}@example.com", fast_id.to_lowercase())
        );
        let mut lines: Vec<(String, i64)> = found["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["productVariant"]["sku"].as_str().unwrap().to_owned(),
                    l["quantity"].as_i64().unwrap(),
                )
            })
            .collect();
        lines.sort();
        let mut want: Vec<(String, i64)> = checkout
            .lines
            .iter()
            .map(|(s, q)| ((*s).to_owned(), *q))
            .collect();
        want.sort();
        assert_eq!(lines, want, "{fast_id}");
        assert_eq!(
            found["shippingLines"][0]["shippingMethod"]["code"],
            checkout.shipping.unwrap_or("standard-shipping"),
            "{fast_id}"
        );
    }
    eprintln!(
        "{} orders in Vendure, all placed {} ms after the first checkout",
        charged.len(),
        t0.elapsed().as_millis()
    );
    assert!(
        mismatches.is_empty(),
        "totals differ:\n{}",
        mismatches.join("\n")
    );

    // Fast reads a shopper by e-mail: the Vendure customer the placement created.
    let first = charged[0].0.to_lowercase();
    let read_user = |email: String| {
        json!({"type": "ENTITY_TYPE_USER", "app_id": "test-app",
               "request_id": {"value": format!("user-{email}")}, "user": {"email": email}})
    };
    let r = post_ok(
        &http,
        &base,
        "read",
        &read_user(format!("{first}@example.com")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let user = &r.json()["user"]["user"];
    assert_eq!(user["email"], format!("{first}@example.com"), "{user}");
    assert_eq!(
        (user["first_name"].as_str(), user["last_name"].as_str()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert!(
        user["external_user_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{user}"
    );
    let r = post_ok(
        &http,
        &base,
        "read",
        &read_user("nobody@example.com".into()),
    )
    .await;
    assert_eq!(r.status, 404, "{}", show(&r));

    // Vendure down: checkouts still convert (the catalog is in memory) and their placements
    // wait in the outbox, through a kill -9 of fast-seller, until Vendure is back.
    vendure.kill();
    let late: Vec<String> = (0..2).map(|i| format!("F{run}-late{i}")).collect();
    for (fast_id, checkout) in late.iter().zip(&CARTS[..2]) {
        run_checkout(&http, &base, fast_id, checkout, &slug_of).await;
    }
    let mut server = server;
    server.kill9();

    // A fast-seller that cannot reach Vendure starts from the stored catalog.
    let offline = tempfile::tempdir().unwrap();
    std::fs::copy(
        data.path().join("vendure-catalog.json"),
        offline.path().join("vendure-catalog.json"),
    )
    .unwrap();
    let offline_args = [
        "--data-dir",
        offline.path().to_str().unwrap(),
        "--backend",
        "vendure",
        "--vendure-url",
        "http://127.0.0.1:9/admin-api",
    ];
    let cut_off =
        ServerProcess::start_with(&offline_args, &[("FAST_SELLER_VENDURE_API_KEY", key)]).await;
    let ready: Value = http
        .get(format!("{}/readyz", cut_off.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["catalog"]["source"], "vendure", "{ready}");
    assert!(
        ready["catalog"]["age_seconds"].as_u64().is_some(),
        "{ready}"
    );
    assert!(
        cut_off
            .output()
            .contains("starting with the stored catalog"),
        "{}",
        cut_off.output()
    );
    drop(cut_off);

    vendure.run();
    let server = ServerProcess::start_with(&args, &[("FAST_SELLER_VENDURE_API_KEY", key)]).await;
    let admin = Admin::login(url).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    for fast_id in &late {
        loop {
            let orders = admin
                .gql(
                    "query($f: String!) { orders(options: { filter: { fastOrderId: { eq: $f } } }) { totalItems items { state } } }",
                    json!({ "f": fast_id }),
                )
                .await;
            if orders["orders"]["items"][0]["state"] == "PaymentSettled" {
                assert_eq!(orders["orders"]["totalItems"], 1, "{fast_id}: {orders}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{fast_id} never reached Vendure after it came back: {orders}\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    drop(server);

    // The catalog commands.
    let cli_dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fast-seller"))
            .args(args)
            .args(["--backend", "vendure", "--vendure-url", url, "--data-dir"])
            .arg(cli_dir.path())
            .env("FAST_SELLER_VENDURE_API_KEY", key)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = cli(&["catalog", "show"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("catalog sync"), "{err}");
    let (code, out, err) = cli(&["catalog", "sync", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("86 variants") && out.contains("not mapped (3)") && out.contains("FACETS"),
        "{out}"
    );
    assert!(out.contains("dry run"), "{out}");
    assert!(!cli_dir.path().join("vendure-catalog.json").exists());
    let (code, out, err) = cli(&["catalog", "sync"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("stored in"), "{out}");
    let (code, out, err) = cli(&["catalog", "show"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("L2201308") && out.contains("standard-shipping") && out.contains("PROD25"),
        "{out}"
    );
    let (code, out, err) = cli(&["catalog", "show", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["catalog"]["variants"].as_array().unwrap().len(), 86);
}
