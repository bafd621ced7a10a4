// The fast-seller plugin for Vendure 3 (plain CommonJS: no build step).
//
// 1. Declares the Order custom field `fastOrderId` (string, unique, nullable, Admin API only).
//    fast-seller sets it first on the draft it creates, so a retried placement finds the order
//    instead of creating a second one.
// 2. Registers the payment method handler `fast-seller-payment`. fast-seller records Fast's
//    payment with `addManualPaymentToOrder(method: "<that method's code>")`; the handler lets
//    a refund made in Vendure's dashboard against that payment complete (state Settled), and
//    refuses to take payments at a storefront checkout.
// 3. Mirrors changes made on Vendure's side of a Fast order (an order whose fastOrderId is set)
//    back to fast-seller: full cancel, partial cancel (lines), settled refund, shipped and
//    delivered fulfilment. Each change becomes one job in Vendure's job queue (durable: the
//    job table of the database with DefaultJobQueuePlugin, Redis with BullMQJobQueuePlugin);
//    the job POSTs the event to fast-seller, signed with Standard Webhooks headers, and is
//    retried with the job queue's backoff until fast-seller answers 2xx (or 409). The event id
//    is derived from the change (not random), so a redelivery carries the same `webhook-id`
//    and fast-seller drops it.
'use strict';

const crypto = require('crypto');
const {
    VendurePlugin,
    PluginCommonModule,
    EventBus,
    JobQueueService,
    TransactionalConnection,
    Logger,
    LanguageCode,
    PaymentMethodHandler,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    FulfillmentLine,
    OrderStateTransitionEvent,
    OrderLineEvent,
    RefundStateTransitionEvent,
    FulfillmentStateTransitionEvent,
} = require('@vendure/core');

const loggerCtx = 'FastSellerPlugin';
const QUEUE = 'fast-seller-events';

const fastPaymentHandler = new PaymentMethodHandler({
    code: 'fast-seller-payment',
    description: [{ languageCode: LanguageCode.en, value: 'Fast (recorded by fast-seller; not a storefront payment)' }],
    args: {},
    createPayment: (_ctx, _order, amount) => ({
        amount,
        state: 'Declined',
        errorMessage: 'Fast payments are recorded by fast-seller, not taken at a storefront checkout',
    }),
    settlePayment: () => ({ success: true }),
    // Fast moves the money: the refund is complete on Vendure's side once fast-seller has it,
    // which the plugin guarantees by queueing the event in the same step.
    createRefund: (_ctx, _input, _amount, _order, payment) => ({
        state: 'Settled',
        transactionId: payment.transactionId,
        metadata: { refundedThrough: 'fast-seller' },
    }),
});

/** Standard Webhooks v1 headers for `body`, keyed with a `whsec_<base64>` secret. */
function sign(secret, id, timestamp, body) {
    const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
    const mac = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
    return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${mac}` };
}

function lineRef(line, quantity) {
    return {
        order_line_id: String(line.id),
        sku: line.productVariant ? line.productVariant.sku : undefined,
        quantity,
        unit_price: line.unitPrice,
        unit_price_with_tax: line.unitPriceWithTax,
        prorated_unit_price_with_tax: line.proratedUnitPriceWithTax,
    };
}

class FastSellerService {
    constructor(eventBus, jobQueueService, connection) {
        this.eventBus = eventBus;
        this.jobQueueService = jobQueueService;
        this.connection = connection;
        // Ids queued lately: one cancellation of several lines publishes one event per line.
        this.recent = new Set();
    }

    async onApplicationBootstrap() {
        const options = FastSellerPlugin.options;
        this.queue = await this.jobQueueService.createQueue({
            name: QUEUE,
            process: job => this.deliver(job.data),
        });
        if (!options.url) {
            Logger.warn('no url configured: changes to Fast orders are not forwarded', loggerCtx);
            return;
        }
        const on = (type, handler) =>
            this.eventBus.ofType(type).subscribe(event =>
                handler(event).catch(err => Logger.error(`${type.name}: ${err.message}`, loggerCtx, err.stack)),
            );
        on(OrderStateTransitionEvent, e => this.onOrderState(e));
        on(OrderLineEvent, e => this.onOrderLine(e));
        on(RefundStateTransitionEvent, e => this.onRefundState(e));
        on(FulfillmentStateTransitionEvent, e => this.onFulfillmentState(e));
    }

    repo(entity) {
        return this.connection.rawConnection.getRepository(entity);
    }

    // Events are published after their transaction commits, so what is read here is final.
    async loadOrder(id) {
        return this.repo(Order).findOne({ where: { id }, relations: ['lines', 'lines.productVariant'] });
    }

    async latestCancellation(orderId) {
        // OrderHistoryEntry is not exported by @vendure/core; its entity name is.
        const [entry] = await this.repo('OrderHistoryEntry').find({
            where: { order: { id: orderId }, type: 'ORDER_CANCELLATION' },
            order: { createdAt: 'DESC', id: 'DESC' },
            take: 1,
        });
        return entry;
    }

    async enqueue(ctx, id, type, order, detail) {
        const fastOrderId = order.customFields && order.customFields.fastOrderId;
        if (!fastOrderId || this.recent.has(id)) {
            return; // not a Fast order, or already queued by this process
        }
        this.recent.add(id);
        if (this.recent.size > 1000) {
            this.recent.delete(this.recent.values().next().value);
        }
        const event = {
            id,
            type,
            occurred_at: new Date().toISOString(),
            fast_order_id: fastOrderId,
            vendure_order_id: String(order.id),
            vendure_order_code: order.code,
            vendure_order_state: order.state,
            currency_code: order.currencyCode,
            // Who made the change: fast-seller recognises its own API key's user and
            // treats the echo of its own actions as already applied.
            actor_user_id: ctx.activeUserId != null ? String(ctx.activeUserId) : null,
            ...detail,
        };
        await this.queue.add(event, { retries: FastSellerPlugin.options.retries });
        Logger.verbose(`queued ${type} ${id} for ${fastOrderId}`, loggerCtx);
    }

    async onOrderState(event) {
        if (event.toState !== 'Cancelled') {
            return;
        }
        const order = await this.loadOrder(event.order.id);
        const cancellation = await this.latestCancellation(order.id);
        await this.enqueue(event.ctx, `vendure-order-${order.id}-cancelled`, 'order.cancelled', order, {
            from_state: event.fromState,
            reason: (cancellation && cancellation.data && cancellation.data.reason) || null,
        });
    }

    // A partial cancel. A full cancel also cancels every line first; its order.cancelled
    // event covers it, so lines of an order that ended Cancelled are not reported.
    async onOrderLine(event) {
        if (event.type !== 'cancelled') {
            return;
        }
        const order = await this.loadOrder(event.order.id);
        if (!order || order.state === 'Cancelled') {
            return;
        }
        const cancellation = await this.latestCancellation(order.id);
        if (!cancellation) {
            return;
        }
        const byLine = new Map(order.lines.map(l => [String(l.id), l]));
        const lines = (cancellation.data.lines || []).map(({ orderLineId, quantity }) => {
            const line = byLine.get(String(orderLineId));
            return line ? lineRef(line, quantity) : { order_line_id: String(orderLineId), quantity };
        });
        await this.enqueue(event.ctx, `vendure-cancellation-${cancellation.id}`, 'order.lines_cancelled', order, {
            reason: cancellation.data.reason || null,
            shipping_cancelled: !!cancellation.data.shippingCancelled,
            lines,
        });
    }

    async onRefundState(event) {
        if (event.toState !== 'Settled') {
            return;
        }
        const refund = await this.repo(Refund).findOne({ where: { id: event.refund.id } });
        const refundLines = await this.repo(RefundLine).find({ where: { refundId: refund.id } });
        const order = await this.loadOrder(event.order.id);
        const byLine = new Map(order.lines.map(l => [String(l.id), l]));
        await this.enqueue(event.ctx, `vendure-refund-${refund.id}-settled`, 'order.refunded', order, {
            refund: {
                id: String(refund.id),
                total: refund.total,
                items: refund.items,
                shipping: refund.shipping,
                adjustment: refund.adjustment,
                reason: refund.reason || null,
                method: refund.method,
                transaction_id: refund.transactionId || null,
                lines: refundLines.map(r => {
                    const line = byLine.get(String(r.orderLineId));
                    return line ? lineRef(line, r.quantity) : { order_line_id: String(r.orderLineId), quantity: r.quantity };
                }),
            },
        });
    }

    async onFulfillmentState(event) {
        const kind = { Shipped: 'order.shipped', Delivered: 'order.delivered' }[event.toState];
        if (!kind) {
            return;
        }
        const fulfillment = event.fulfillment;
        const fLines = await this.repo(FulfillmentLine).find({
            where: { fulfillmentId: fulfillment.id },
            relations: ['orderLine', 'orderLine.productVariant'],
        });
        if (!fLines.length) {
            return;
        }
        const orderLine = await this.repo(OrderLine).findOne({
            where: { id: fLines[0].orderLineId },
            relations: ['order'],
        });
        const order = await this.loadOrder(orderLine.order.id);
        await this.enqueue(event.ctx, `vendure-fulfillment-${fulfillment.id}-${event.toState.toLowerCase()}`, kind, order, {
            fulfillment: {
                id: String(fulfillment.id),
                state: event.toState,
                from_state: event.fromState,
                method: fulfillment.method,
                tracking_code: fulfillment.trackingCode || null,
                lines: fLines.map(f => lineRef(f.orderLine, f.quantity)),
            },
        });
    }

    async deliver(event) {
        const { url, secret, timeoutMs } = FastSellerPlugin.options;
        if (!url) {
            throw new Error('fast-seller url not configured');
        }
        const body = JSON.stringify(event);
        const headers = {
            'content-type': 'application/json',
            'idempotency-key': event.id,
            ...(secret ? sign(secret, event.id, Math.floor(Date.now() / 1000), body) : { 'webhook-id': event.id }),
        };
        let res;
        try {
            res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
        } catch (err) {
            throw new Error(`POST ${url}: ${err.message}`);
        }
        // 409: fast-seller already has this event.
        if (!(res.ok || res.status === 409)) {
            const text = await res.text().catch(() => '');
            throw new Error(`POST ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
        }
        return { status: res.status };
    }
}
Reflect.defineMetadata('design:paramtypes', [EventBus, JobQueueService, TransactionalConnection], FastSellerService);

class FastSellerPlugin {
    /**
     * @param {{url?: string, secret?: string, retries?: number, timeoutMs?: number}} options
     *   url: fast-seller's endpoint for Vendure events; secret: the `whsec_…` secret shared with
     *   fast-seller; retries: attempts after the first (default 100, with the job queue's
     *   backoff); timeoutMs: per attempt (default 10000).
     */
    static init(options = {}) {
        FastSellerPlugin.options = { retries: 100, timeoutMs: 10000, ...options };
        return FastSellerPlugin;
    }
}
FastSellerPlugin.options = { retries: 100, timeoutMs: 10000 };

VendurePlugin({
    imports: [PluginCommonModule],
    providers: [FastSellerService],
    compatibility: '^3.0.0',
    configuration: config => {
        config.customFields.Order = config.customFields.Order || [];
        config.customFields.Order.push({
            name: 'fastOrderId',
            type: 'string',
            unique: true,
            nullable: true,
            public: false,
            label: [{ languageCode: LanguageCode.en, value: 'Fast order id' }],
            description: [{ languageCode: LanguageCode.en, value: 'Set by fast-seller when it places the order' }],
        });
        config.paymentOptions.paymentMethodHandlers.push(fastPaymentHandler);
        return config;
    },
})(FastSellerPlugin);

module.exports = { FastSellerPlugin, fastPaymentHandler, sign };
