// Vendure 3.7's order arithmetic for the standard strategies, restated as one pure function so
// that it can be checked against a running Vendure (verify.js) and ported (docs/vendure.md).
// All amounts are integers in minor units; intermediate values are IEEE doubles, as in Vendure.
'use strict';

/** JavaScript's Math.round: nearest integer, halves toward +infinity (-2.5 -> -2). */
const round = x => Math.round(x);
/** Vendure's netPriceOf / grossPriceOf (common/tax-utils), unrounded. */
const netOf = (gross, rate) => gross - (gross - gross / ((100 + rate) / 100));
const grossOf = (net, rate) => net + net * (rate / 100);

/** Vendure's prorate(): integer shares of `amount` in proportion to `weights`. */
function prorate(weights, amount) {
    const total = weights.reduce((t, w) => t + w, 0);
    const actual = weights.map(w => (total === 0 ? amount / weights.length : amount * (w / total)));
    const rounded = actual.map(a => Math.floor(a));
    const error = actual.map((a, i) => a - rounded[i]);
    let added = rounded.reduce((t, r) => t + r, 0);
    while (added < amount) {
        let maxError = 0;
        let at = -1;
        error.forEach((e, i) => {
            if (e > maxError) {
                maxError = e;
                at = i;
            }
        });
        rounded[at] += 1;
        error[at] -= 1;
        added += 1;
    }
    return rounded;
}

/**
 * cart = {
 *   pricesIncludeTax: bool,            the channel's setting
 *   zoneIsDefault: bool,               the order's tax zone is the channel's default tax zone
 *   lines: [{ id, price, rate, defaultZoneRate, quantity }]
 *       price: the variant's channel price (ProductVariant.price as stored, i.e. with tax when
 *       pricesIncludeTax), rate: tax % of its category in the order's zone,
 *       defaultZoneRate: tax % of its category in the channel's default zone
 *   promotions: [{ minimum?: { amount, taxInclusive }, action:
 *       { kind: 'order_percentage', discount } | { kind: 'order_fixed', discount } |
 *       { kind: 'product_percentage', discount, variantIds } | { kind: 'free_shipping' } }]
 *       (in Vendure's application order: priorityScore ascending)
 *   shipping: { rate, includesTax: 'auto' | 'include' | 'exclude', taxRate } | null
 * }
 */
function priceOrder(cart) {
    const lines = cart.lines.map(l => {
        // DefaultProductVariantPriceCalculationStrategy
        let listPrice = l.price;
        let li = false;
        if (cart.pricesIncludeTax) {
            if (cart.zoneIsDefault) {
                li = true;
            } else {
                listPrice = round(netOf(l.price, l.defaultZoneRate));
            }
        }
        return { id: l.id, quantity: l.quantity, rate: l.rate, listPrice, li, adjustments: [] };
    });
    const unitAdj = L => L.adjustments.map(a => a / L.quantity).reduce((t, a) => t + a, 0);
    const proratedUnit = L => (L.li ? netOf(L.listPrice + unitAdj(L), L.rate) : L.listPrice + unitAdj(L));
    const proratedUnitWithTax = L => (L.li ? L.listPrice + unitAdj(L) : grossOf(L.listPrice + unitAdj(L), L.rate));
    const linePrice = L => round(proratedUnit(L) * L.quantity);
    const linePriceWithTax = L => round(proratedUnitWithTax(L) * L.quantity);
    const unitPrice = L => round(L.li ? netOf(L.listPrice, L.rate) : L.listPrice);
    const unitPriceWithTax = L => round(L.li ? L.listPrice : grossOf(L.listPrice, L.rate));
    const totals = () => ({
        subTotal: lines.reduce((t, L) => t + linePrice(L), 0),
        subTotalWithTax: lines.reduce((t, L) => t + linePriceWithTax(L), 0),
    });
    const addAdjustment = (L, amount) => {
        const max = -(L.li ? linePriceWithTax(L) : linePrice(L));
        const limited = Math.max(max, amount);
        if (limited !== 0) {
            L.adjustments.push(limited);
        }
    };
    const promotions = cart.promotions || [];
    const passes = p => {
        if (!p.minimum) {
            return true;
        }
        const t = totals();
        return (p.minimum.taxInclusive ? t.subTotalWithTax : t.subTotal) >= p.minimum.amount;
    };
    // Item promotions, line by line (OrderCalculator.applyOrderItemPromotions).
    for (const L of lines) {
        L.adjustments = [];
        for (const p of promotions) {
            if (passes(p) && p.action.kind === 'product_percentage' && p.action.variantIds.map(String).includes(String(L.id))) {
                const unit = cart.pricesIncludeTax ? unitPriceWithTax(L) : unitPrice(L);
                addAdjustment(L, round(-unit * (p.action.discount / 100) * L.quantity));
            }
        }
    }
    // Order promotions, spread over the lines by their prorated price with tax.
    for (const p of promotions) {
        if (!passes(p) || !['order_percentage', 'order_fixed'].includes(p.action.kind)) {
            continue;
        }
        const t = totals();
        const base = cart.pricesIncludeTax ? t.subTotalWithTax : t.subTotal;
        const amount =
            p.action.kind === 'order_percentage' ? round(-base * (p.action.discount / 100)) : round(-Math.min(p.action.discount, base));
        if (amount === 0) {
            continue;
        }
        const shares = prorate(
            lines.map(L => (L.quantity !== 0 ? linePriceWithTax(L) : 0)),
            amount,
        );
        lines.forEach((L, i) => addAdjustment(L, shares[i]));
    }
    const { subTotal, subTotalWithTax } = totals();
    let shipping = 0;
    let shippingWithTax = 0;
    if (cart.shipping) {
        const s = cart.shipping;
        const li = s.includesTax === 'auto' ? cart.pricesIncludeTax : s.includesTax === 'include';
        const listPrice = round(s.rate);
        let adj = 0;
        for (const p of promotions) {
            if (passes(p) && p.action.kind === 'free_shipping') {
                const price = li ? netOf(listPrice, s.taxRate) : listPrice;
                const priceWithTax = round(li ? listPrice : grossOf(listPrice, s.taxRate));
                adj += round(li ? -priceWithTax : -price);
            }
        }
        const result = listPrice + adj;
        shipping = round(li ? netOf(result, s.taxRate) : result);
        shippingWithTax = round(li ? result : grossOf(result, s.taxRate));
    }
    return {
        subTotal,
        subTotalWithTax,
        shipping,
        shippingWithTax,
        total: subTotal + shipping,
        totalWithTax: subTotalWithTax + shippingWithTax,
        lines: lines.map(L => ({ id: L.id, linePrice: linePrice(L), linePriceWithTax: linePriceWithTax(L) })),
    };
}

module.exports = { priceOrder, prorate, round, netOf, grossOf };
