// End-to-end check of a running demo Vendure (server.js) over the Admin API, with the
// documents of graphql/*.graphql: catalog reads, order placement on a customer's behalf,
// totals against lib/pricing.js for a table of carts, and the plugin's signed events for a
// cancel, a partial cancel, a refund and a fulfilment.
//
//   VENDURE_URL=http://127.0.0.1:3000/admin-api EVENTS_PORT=3199 \
//   FAST_SELLER_EVENTS_SECRET=whsec_... node verify.js
//
// The server must have been started with FAST_SELLER_EVENTS_URL=http://127.0.0.1:$EVENTS_PORT/events
// and the same secret. It changes the server's data (tax rates, promotions, orders): use a
// throw-away VENDURE_DATA_DIR.
'use strict';

const http = require('http');
const assert = require('assert/strict');
const crypto = require('crypto');
const { AdminClient } = require('./lib/graphql');
const { priceOrder } = require('./lib/pricing');

const url = process.env.VENDURE_URL || 'http://127.0.0.1:3000/admin-api';
const eventsPort = Number(process.env.EVENTS_PORT || 3199);
const secret = process.env.FAST_SELLER_EVENTS_SECRET;
const api = new AdminClient(url);
const log = (...a) => console.log(...a);
const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---- the event receiver (a stand-in for fast-seller) ------------------------------------
const received = []; // every delivery attempt
let failFirst = true; // answer 503 once, to see the job queue retry
function verifySignature(headers, body) {
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const expected = crypto
        .createHmac('sha256', key)
        .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`)
        .digest('base64');
    return headers['webhook-signature'].split(' ').includes(`v1,${expected}`);
}
const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', c => (body += c));
    req.on('end', () => {
        const ok = secret ? verifySignature(req.headers, body) : true;
        const event = JSON.parse(body);
        if (!String(event.fast_order_id).startsWith(`fast-events-${process.pid}-`)) {
            res.writeHead(204).end(); // left over from an earlier run
            return;
        }
        received.push({ id: req.headers['webhook-id'], ok, event, at: Date.now() });
        if (failFirst) {
            failFirst = false;
            res.writeHead(503).end('try later');
            return;
        }
        res.writeHead(ok ? 204 : 401).end();
    });
});

// ---- catalog -------------------------------------------------------------------------------
async function readCatalog() {
    const { activeChannel: channel } = await api.op('Channel');
    const variants = [];
    for (let skip = 0; ; skip += 100) {
        const { productVariants } = await api.op('Variants', { skip, take: 100 });
        variants.push(...productVariants.items);
        if (skip + 100 >= productVariants.totalItems) break;
    }
    const tax = await api.op('Tax');
    const { shippingMethods } = await api.op('ShippingMethods');
    const { promotions } = await api.op('Promotions');
    return { channel, variants, tax, shippingMethods: shippingMethods.items, promotions: promotions.items };
}

function zoneOf(catalog, countryCode) {
    return catalog.tax.zones.items.find(z => z.members.some(m => m.code === countryCode));
}
function rateOf(catalog, zoneId, categoryId) {
    const r = catalog.tax.taxRates.items.find(
        t => t.enabled && t.zone.id === zoneId && t.category.id === categoryId && !t.customerGroup,
    );
    return r ? r.value : 0;
}

// The sample data has one rate per category for every zone; vary them so zones matter.
async function setUpTaxAndPromotions(catalog) {
    const byName = n => catalog.tax.taxRates.items.find(t => t.name === n);
    const change = { 'Standard Tax Americas': 8.875, 'Standard Tax Oceania': 15, 'Reduced Tax Asia': 8, 'Reduced Tax Europe': 7 };
    for (const [name, value] of Object.entries(change)) {
        await api.raw('mutation($id:ID!,$v:Float!){updateTaxRate(input:{id:$id,value:$v}){id value}}', { id: byName(name).id, v: value });
    }
    // Variants 5-10 reduced, 11-12 zero-rated.
    const cat = n => catalog.tax.taxCategories.items.find(c => c.name === n).id;
    const input = [
        ...[5, 6, 7, 8, 9, 10].map(id => ({ id: String(id), taxCategoryId: cat('Reduced Tax') })),
        ...[11, 12].map(id => ({ id: String(id), taxCategoryId: cat('Zero Tax') })),
    ];
    await api.raw('mutation($input:[UpdateProductVariantInput!]!){updateProductVariants(input:$input){id}}', { input });
    // Two prices where computing in doubles (as Vendure does) and in exact decimals round a
    // half cent differently once a discount is spread over the units (see docs/vendure.md).
    const usd = price => [{ currencyCode: 'USD', price }];
    await api.raw('mutation($input:[UpdateProductVariantInput!]!){updateProductVariants(input:$input){id}}', {
        input: [
            { id: '9', prices: usd(1612545) },
            { id: '50', prices: usd(4353) },
        ],
    });
    const promos = [
        { couponCode: 'PCT15', conditions: [], actions: [{ code: 'order_percentage_discount', arguments: [{ name: 'discount', value: '15' }] }] },
        {
            couponCode: 'FIX1000',
            conditions: [{ code: 'minimum_order_amount', arguments: [{ name: 'amount', value: '5000' }, { name: 'taxInclusive', value: 'false' }] }],
            actions: [{ code: 'order_fixed_discount', arguments: [{ name: 'discount', value: '1000' }] }],
        },
        {
            couponCode: 'PROD25',
            conditions: [],
            actions: [{ code: 'products_percentage_discount', arguments: [{ name: 'discount', value: '25' }, { name: 'productVariantIds', value: '["1","5","20"]' }] }],
        },
        {
            couponCode: 'FREESHIP',
            conditions: [{ code: 'minimum_order_amount', arguments: [{ name: 'amount', value: '10000' }, { name: 'taxInclusive', value: 'true' }] }],
            actions: [{ code: 'free_shipping', arguments: [] }],
        },
        { couponCode: 'EDGE1', conditions: [], actions: [{ code: 'order_fixed_discount', arguments: [{ name: 'discount', value: '10703310' }] }] },
        { couponCode: 'EDGE2', conditions: [], actions: [{ code: 'order_fixed_discount', arguments: [{ name: 'discount', value: '19032' }] }] },
    ];
    for (const p of promos) {
        if (catalog.promotions.some(x => x.couponCode === p.couponCode)) continue;
        const { body } = await api.raw(
            'mutation($input:CreatePromotionInput!){createPromotion(input:$input){__typename ... on Promotion{id} ... on ErrorResult{message}}}',
            { input: { enabled: true, ...p, translations: [{ languageCode: 'en', name: p.couponCode }] } },
        );
        assert.equal(body.data.createPromotion.__typename, 'Promotion', JSON.stringify(body));
    }
}

function promotionModel(p) {
    const arg = (op, n) => (op.args.find(a => a.name === n) || {}).value;
    const cond = p.conditions.find(c => c.code === 'minimum_order_amount');
    const a = p.actions[0];
    const action =
        a.code === 'order_percentage_discount'
            ? { kind: 'order_percentage', discount: Number(arg(a, 'discount')) }
            : a.code === 'order_fixed_discount'
              ? { kind: 'order_fixed', discount: Number(arg(a, 'discount')) }
              : a.code === 'products_percentage_discount'
                ? { kind: 'product_percentage', discount: Number(arg(a, 'discount')), variantIds: JSON.parse(arg(a, 'productVariantIds')) }
                : { kind: 'free_shipping' };
    return {
        minimum: cond && { amount: Number(arg(cond, 'amount')), taxInclusive: arg(cond, 'taxInclusive') === 'true' },
        action,
    };
}

function expected(catalog, cart, zoneStrategy) {
    const zone = zoneStrategy === 'channel' ? catalog.channel.defaultTaxZone : zoneOf(catalog, cart.country);
    const method = catalog.shippingMethods.find(m => m.code === cart.shipping);
    const arg = n => method.calculator.args.find(a => a.name === n).value;
    const promo = cart.coupon && catalog.promotions.find(p => p.couponCode === cart.coupon);
    return priceOrder({
        pricesIncludeTax: catalog.channel.pricesIncludeTax,
        zoneIsDefault: zone.id === catalog.channel.defaultTaxZone.id,
        lines: cart.lines.map(([id, quantity]) => {
            const v = catalog.variants.find(x => x.id === String(id));
            return {
                id: v.id,
                // The stored channel price (with tax when pricesIncludeTax); the API's `price`
                // field is always the net price for the request's zone.
                price: v.prices.find(p => p.currencyCode === catalog.channel.defaultCurrencyCode).price,
                quantity,
                rate: rateOf(catalog, zone.id, v.taxCategory.id),
                defaultZoneRate: rateOf(catalog, catalog.channel.defaultTaxZone.id, v.taxCategory.id),
            };
        }),
        promotions: promo ? [promotionModel(promo)] : [],
        shipping: { rate: Number(arg('rate')), includesTax: arg('includesTax'), taxRate: Number(arg('taxRate')) },
    });
}

// ---- placing an order: the sequence fast-seller will run ------------------------------------
let seq = 0;
const evId1 = `fast-events-${process.pid}-1`;
const evId2 = `fast-events-${process.pid}-2`;
async function placeOrder(catalog, cart) {
    const fastOrderId = cart.fastOrderId || `fast-${process.pid}-${++seq}`;
    const t0 = Date.now();
    const found = await api.op('OrderByFastId', { fastOrderId });
    assert.equal(found.orders.items.length, 0);
    const { createDraftOrder: draft } = await api.op('CreateDraftOrder');
    const orderId = draft.id;
    await api.op('SetDraftOrderFastId', { orderId, fastOrderId });
    const address = {
        fullName: 'Ada Lovelace',
        streetLine1: '1 Main Street',
        city: 'Springfield',
        postalCode: '12345',
        countryCode: cart.country,
    };
    await api.op('SetDraftOrderShippingAddress', { orderId, input: address });
    await api.op('SetDraftOrderBillingAddress', { orderId, input: address });
    for (const [productVariantId, quantity] of cart.lines) {
        const { addItemToDraftOrder: r } = await api.op('AddItemToDraftOrder', { orderId, productVariantId: String(productVariantId), quantity });
        assert.equal(r.__typename, 'Order', JSON.stringify(r));
    }
    const email = cart.email || 'ada@example.com';
    const { customers } = await api.op('CustomerByEmail', { email });
    const customer = customers.items[0]
        ? { customerId: customers.items[0].id }
        : { input: { firstName: 'Ada', lastName: 'Lovelace', emailAddress: email } };
    const { setCustomerForDraftOrder: c } = await api.op('SetCustomerForDraftOrder', { orderId, ...customer });
    assert.equal(c.__typename, 'Order', JSON.stringify(c));
    if (cart.coupon) {
        const { applyCouponCodeToDraftOrder: r } = await api.op('ApplyCouponCodeToDraftOrder', { orderId, couponCode: cart.coupon });
        assert.equal(r.__typename, 'Order', JSON.stringify(r));
    }
    const { eligibleShippingMethodsForDraftOrder: methods } = await api.op('EligibleShippingMethodsForDraftOrder', { orderId });
    const method = methods.find(m => m.code === cart.shipping);
    const { setDraftOrderShippingMethod: order } = await api.op('SetDraftOrderShippingMethod', { orderId, shippingMethodId: method.id });
    assert.equal(order.__typename, 'Order', JSON.stringify(order));
    const { transitionOrderToState: t } = await api.op('TransitionOrderToState', { id: orderId, state: 'ArrangingPayment' });
    assert.equal(t.__typename, 'Order', JSON.stringify(t));
    const { addManualPaymentToOrder: paid } = await api.op('AddManualPaymentToOrder', {
        orderId,
        method: 'fast',
        transactionId: fastOrderId,
        metadata: { fastOrderId, amount: order.totalWithTax, currency: order.currencyCode },
    });
    assert.equal(paid.__typename, 'Order', JSON.stringify(paid));
    assert.equal(paid.state, 'PaymentSettled');
    return { order, paid, fastOrderId, ms: Date.now() - t0 };
}

const carts = [
    { country: 'DE', lines: [[1, 1]], shipping: 'standard-shipping' },
    { country: 'DE', lines: [[2, 3], [5, 2]], shipping: 'express-shipping' },
    { country: 'US', lines: [[1, 1]], shipping: 'standard-shipping' },
    { country: 'US', lines: [[13, 3], [30, 7], [5, 1]], shipping: 'standard-shipping' },
    { country: 'US', lines: [[23, 2], [11, 1]], shipping: 'express-shipping', coupon: 'PCT15' },
    { country: 'AU', lines: [[13, 1], [14, 2], [15, 3]], shipping: 'standard-shipping', coupon: 'PCT15' },
    { country: 'JP', lines: [[5, 3], [6, 1], [40, 2]], shipping: 'standard-shipping', coupon: 'FIX1000' },
    { country: 'JP', lines: [[40, 1]], shipping: 'standard-shipping', coupon: 'FIX1000' },
    { country: 'US', lines: [[1, 1], [5, 2], [30, 1]], shipping: 'express-shipping', coupon: 'PROD25' },
    { country: 'DE', lines: [[20, 3], [21, 1]], shipping: 'standard-shipping', coupon: 'PROD25' },
    { country: 'AU', lines: [[8, 4], [45, 1]], shipping: 'express-shipping', coupon: 'FREESHIP' },
    { country: 'DE', lines: [[48, 1]], shipping: 'express-shipping', coupon: 'FREESHIP' },
    { country: 'US', lines: [[31, 9], [32, 11], [33, 1]], shipping: 'standard-shipping', coupon: 'FIX1000' },
    { country: 'AU', lines: [[11, 2], [12, 5]], shipping: 'standard-shipping' },
    { country: 'US', lines: [[9, 9]], shipping: 'standard-shipping', coupon: 'EDGE1' },
    { country: 'DE', lines: [[50, 5]], shipping: 'standard-shipping', coupon: 'EDGE2' },
];

async function pricingTable(catalog, zoneStrategy) {
    const rows = [];
    for (const cart of carts) {
        const want = expected(catalog, cart, zoneStrategy);
        const { paid, order, ms } = await placeOrder(catalog, cart);
        const got = { subTotal: order.subTotal, subTotalWithTax: order.subTotalWithTax, shipping: order.shipping, shippingWithTax: order.shippingWithTax, totalWithTax: paid.totalWithTax };
        const match = ['subTotal', 'subTotalWithTax', 'shipping', 'shippingWithTax', 'totalWithTax'].every(k => got[k] === want[k]);
        rows.push({ cart, got, want, match, code: paid.code, ms });
    }
    return rows;
}

function printRows(title, catalog, rows) {
    log(`\n${title} (pricesIncludeTax ${catalog.channel.pricesIncludeTax})`);
    log('| country | lines (variant x qty) | coupon | shipping | subTotal | subTotalWithTax | shippingWithTax | totalWithTax | reference |');
    log('|---|---|---|---|---:|---:|---:|---:|---|');
    for (const r of rows) {
        const lines = r.cart.lines.map(([id, q]) => `${catalog.variants.find(v => v.id === String(id)).sku}x${q}`).join(' ');
        log(
            `| ${r.cart.country} | ${lines} | ${r.cart.coupon || ''} | ${r.cart.shipping.replace('-shipping', '')} | ${r.got.subTotal} | ${r.got.subTotalWithTax} | ${r.got.shippingWithTax} | ${r.got.totalWithTax} | ${r.match ? 'equal' : 'DIFFERS ' + JSON.stringify(r.want)} |`,
        );
    }
}

async function waitFor(pred, ms, what) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
        if (pred()) return;
        await sleep(200);
    }
    throw new Error(`timed out waiting for ${what}`);
}

async function main() {
    await new Promise(r => receiver.listen(eventsPort, '127.0.0.1', r));
    await api.login(process.env.SUPERADMIN_USERNAME || 'superadmin', process.env.SUPERADMIN_PASSWORD || 'superadmin');

    // An API key with a role, then everything else through it.
    const permissions = [
        'CreateOrder', 'ReadOrder', 'UpdateOrder', 'DeleteOrder', 'ReadCatalog', 'UpdateCatalog', 'ReadCustomer', 'CreateCustomer',
        'UpdateCustomer', 'ReadSettings', 'UpdateSettings', 'ReadPromotion', 'CreatePromotion', 'ReadShippingMethod',
        'ReadTaxRate', 'UpdateTaxRate', 'ReadTaxCategory', 'ReadZone', 'ReadCountry', 'ReadChannel', 'UpdateChannel', 'ReadPaymentMethod',
    ];
    const { createRole } = await api.op('CreateRole', { code: `fast-seller-${process.pid}`, permissions });
    const { createApiKey } = await api.op('CreateApiKey', { roleIds: [createRole.id], name: 'fast-seller' });
    api.useApiKey(createApiKey.apiKey);
    log('api key works:', (await api.op('Channel')).activeChannel.code);

    let catalog = await readCatalog();
    log(`catalog: ${catalog.variants.length} variants, ${catalog.tax.taxRates.totalItems} tax rates, ${catalog.shippingMethods.length} shipping methods`);
    await setUpTaxAndPromotions(catalog);
    catalog = await readCatalog();

    if (process.env.VERIFY_ONLY === 'pricing') {
        return pricingOnly(catalog);
    }
    // Placement, idempotency by fastOrderId.
    const first = await placeOrder(catalog, { country: 'DE', lines: [[1, 2], [5, 3], [30, 1]], shipping: 'standard-shipping', fastOrderId: evId1 });
    log(`placed ${first.paid.code} (${first.fastOrderId}) totalWithTax ${first.paid.totalWithTax} in ${first.ms} ms`);
    const { createDraftOrder: dup } = await api.op('CreateDraftOrder');
    await assert.rejects(api.op('SetDraftOrderFastId', { orderId: dup.id, fastOrderId: evId1 }), e => {
        log('second draft with the same fastOrderId:', e.message);
        return true;
    });
    const { deleteDraftOrder } = await api.op('DeleteDraftOrder', { orderId: dup.id });
    assert.equal(deleteDraftOrder.result, 'DELETED');
    const again = await api.op('OrderByFastId', { fastOrderId: evId1 });
    assert.equal(again.orders.items.length, 1);
    assert.equal(again.orders.items[0].state, 'PaymentSettled');

    // Stock: more than available.
    const { createDraftOrder: big } = await api.op('CreateDraftOrder');
    const { addItemToDraftOrder: ins } = await api.op('AddItemToDraftOrder', { orderId: big.id, productVariantId: '3', quantity: 150 });
    log('adding 150 of a variant with 100 on hand:', ins.__typename, ins.quantityAvailable, JSON.stringify(ins.order || ins.message || ''));
    await api.op('DeleteDraftOrder', { orderId: big.id });

    // Changes made in Vendure reach the receiver, signed, once each.
    const order = again.orders.items[0];
    const line = sku => order.lines.find(l => l.productVariant.sku === sku);
    const [l1, l5, l30] = ['L2201308', catalog.variants.find(v => v.id === '5').sku, catalog.variants.find(v => v.id === '30').sku].map(line);
    const { cancelOrder: pc } = await api.op('CancelOrder', { orderId: order.id, lines: [{ orderLineId: l5.id, quantity: 1 }], reason: 'customer asked' });
    assert.equal(pc.__typename, 'Order', JSON.stringify(pc));
    const refundAmount = l30.proratedLinePriceWithTax;
    const { refundOrder: refund } = await api.op('RefundOrder', {
        paymentId: order.payments[0].id,
        amount: refundAmount,
        reason: 'damaged',
        lines: [{ orderLineId: l30.id, quantity: 1 }],
    });
    assert.equal(refund.__typename, 'Refund', JSON.stringify(refund));
    log('refund:', JSON.stringify(refund));
    const { addFulfillmentToOrder: ful } = await api.op('AddFulfillmentToOrder', {
        lines: [{ orderLineId: l1.id, quantity: 2 }, { orderLineId: l5.id, quantity: 2 }],
        method: 'DHL',
        trackingCode: 'JD0002',
    });
    assert.equal(ful.__typename, 'Fulfillment', JSON.stringify(ful));
    for (const state of ['Shipped', 'Delivered']) {
        const { transitionFulfillmentToState: f } = await api.op('TransitionFulfillmentToState', { id: ful.id, state });
        assert.equal(f.__typename, 'Fulfillment', JSON.stringify(f));
    }
    const second = await placeOrder(catalog, { country: 'US', lines: [[2, 1]], shipping: 'express-shipping', fastOrderId: evId2 });
    const { cancelOrder: fc } = await api.op('CancelOrder', { orderId: second.paid.id, reason: 'fraud' });
    assert.equal(fc.state, 'Cancelled', JSON.stringify(fc));
    // An order that is not a Fast order: nothing is sent.
    const { createDraftOrder: other } = await api.op('CreateDraftOrder');
    await api.op('DeleteDraftOrder', { orderId: other.id });

    await waitFor(() => new Set(received.filter(r => r.ok).map(r => r.id)).size >= 5 && received.length >= 6, 60000, 'five events');
    await sleep(3000); // anything extra would show up here
    const ids = received.map(r => r.id);
    log(`\nevents: ${received.length} deliveries, ${new Set(ids).size} distinct ids, signatures ${received.every(r => r.ok) ? 'valid' : 'INVALID'}`);
    for (const r of received) {
        const e = r.event;
        log(`  ${r.id} ${e.type} ${e.fast_order_id} ${e.vendure_order_code} ${JSON.stringify(e.refund || e.fulfillment || e.lines || { reason: e.reason })}`);
    }
    const types = [...new Map(received.map(r => [r.id, r.event.type])).values()].sort();
    assert.deepEqual(types, ['order.cancelled', 'order.delivered', 'order.lines_cancelled', 'order.refunded', 'order.shipped']);
    assert.equal(received.length, 6, 'one retry after the 503, no other duplicate');

    const { body: history } = await api.raw(api.documents.get('OrderHistory'), { id: order.id, skip: 0 });
    log('history of', order.code, history.data.order.history.items.map(h => h.type).join(', '));

    const ms = [first.ms, second.ms];
    log(`placement ${Math.min(...ms)}-${Math.max(...ms)} ms`);
    return pricingOnly(catalog);
}

// Pricing: a table of carts, prices without tax, then with tax.
async function pricingOnly(catalog) {
    const zoneStrategy = process.env.VENDURE_TAX_ZONE === 'channel' ? 'channel' : 'address';
    const rows = await pricingTable(catalog, zoneStrategy);
    printRows('carts', catalog, rows);
    await api.raw('mutation($id:ID!){updateChannel(input:{id:$id,pricesIncludeTax:true}){__typename}}', { id: catalog.channel.id });
    const catalogPit = await readCatalog();
    const rowsPit = await pricingTable(catalogPit, zoneStrategy);
    printRows('carts', catalogPit, rowsPit);
    await api.raw('mutation($id:ID!){updateChannel(input:{id:$id,pricesIncludeTax:false}){__typename}}', { id: catalog.channel.id });
    const all = [...rows, ...rowsPit];
    const ms = all.map(r => r.ms);
    log(`\n${all.filter(r => r.match).length}/${all.length} carts equal to the reference; placement ${Math.min(...ms)}-${Math.max(...ms)} ms`);
    receiver.close();
    if (!all.every(r => r.match)) process.exit(1);
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
