// A demo Vendure 3.7 server for fast-seller: embedded sql.js database, the sample data of
// @vendure/create on first boot, the fast-seller plugin loaded, loopback only.
//
// Environment:
//   VENDURE_PORT            port to listen on (default 3000)
//   VENDURE_HOST            interface to bind (default 127.0.0.1)
//   VENDURE_DATA_DIR        where the database lives (default ./data)
//   SUPERADMIN_USERNAME     default superadmin
//   SUPERADMIN_PASSWORD     default superadmin
//   VENDURE_TAX_ZONE        "address" (default: tax by the order's shipping/billing country)
//                           or "channel" (Vendure's default: always the channel's default zone)
//   FAST_SELLER_EVENTS_URL  where the plugin posts order changes (unset: events are kept queued)
//   FAST_SELLER_EVENTS_SECRET  whsec_… secret the events are signed with
//   VENDURE_LOG             error | warn | info | verbose (default info)
'use strict';

process.env.VENDURE_DISABLE_TELEMETRY = 'true';

const fs = require('fs');
const path = require('path');
const {
    bootstrap,
    DefaultJobQueuePlugin,
    DefaultLogger,
    LogLevel,
    JobQueueService,
    AddressBasedTaxZoneStrategy,
    DefaultTaxZoneStrategy,
    dummyPaymentHandler,
} = require('@vendure/core');
const { populate } = require('@vendure/core/cli');
const { FastSellerPlugin } = require('./fast-seller-plugin');

const started = process.hrtime.bigint();
const port = Number(process.env.VENDURE_PORT || 3000);
const host = process.env.VENDURE_HOST || '127.0.0.1';
const dataDir = path.resolve(process.env.VENDURE_DATA_DIR || path.join(__dirname, 'data'));
const dbFile = path.join(dataDir, 'vendure.sqlite');
// Written only once the sample data is complete: a first boot that died half-way starts over.
const populatedMarker = path.join(dataDir, 'populated');
const assetsDir = path.join(path.dirname(require.resolve('@vendure/create/package.json')), 'assets');
const logLevels = { error: LogLevel.Error, warn: LogLevel.Warn, info: LogLevel.Info, verbose: LogLevel.Verbose };

fs.mkdirSync(dataDir, { recursive: true });
const firstBoot = !fs.existsSync(populatedMarker);
if (firstBoot) {
    fs.rmSync(dbFile, { force: true });
}

const config = {
    apiOptions: {
        hostname: host,
        port,
        adminApiPath: 'admin-api',
        shopApiPath: 'shop-api',
        // Server-to-server use only (fast-seller, scripts): no browser origins, and
        // Apollo's CSRF check (JSON POSTs pass it).
        cors: false,
        csrfPrevention: true,
    },
    authOptions: {
        tokenMethod: ['bearer', 'api-key', 'cookie'],
        superadminCredentials: {
            identifier: process.env.SUPERADMIN_USERNAME || 'superadmin',
            password: process.env.SUPERADMIN_PASSWORD || 'superadmin',
        },
        cookieOptions: { secret: process.env.COOKIE_SECRET || 'fast-seller-demo' },
    },
    dbConnectionOptions: {
        type: 'sqljs',
        // The demo creates and updates its schema itself; a production Vendure uses migrations.
        synchronize: true,
        logging: false,
        location: dbFile,
        autoSave: true,
    },
    paymentOptions: {
        // The sample data's "Standard Payment" method uses this handler.
        paymentMethodHandlers: [dummyPaymentHandler],
    },
    taxOptions: {
        taxZoneStrategy:
            process.env.VENDURE_TAX_ZONE === 'channel' ? new DefaultTaxZoneStrategy() : new AddressBasedTaxZoneStrategy(),
    },
    importExportOptions: {
        // The sample images need the asset server plugin (and sharp); the demo skips them.
        assetImportStrategy: { getStreamFromPath: async () => undefined },
    },
    logger: new DefaultLogger({ level: logLevels[process.env.VENDURE_LOG || 'info'] ?? LogLevel.Info }),
    plugins: [
        DefaultJobQueuePlugin.init({
            pollInterval: 500,
            // Capped exponential backoff: 2 s, 4 s, 8 s … 10 min.
            backoffStrategy: (_queue, attemptsMade) => Math.min(2000 * 2 ** Math.max(attemptsMade - 1, 0), 600000),
        }),
        FastSellerPlugin.init({
            url: process.env.FAST_SELLER_EVENTS_URL,
            secret: process.env.FAST_SELLER_EVENTS_SECRET,
        }),
    ],
};

function sampleData() {
    const data = JSON.parse(fs.readFileSync(path.join(assetsDir, 'initial-data.json'), 'utf8'));
    // The method that addManualPaymentToOrder names, so that refunds of Fast's payments reach
    // the plugin's handler (see fast-seller-plugin.js).
    data.paymentMethods.push({ name: 'Fast', handler: { code: 'fast-seller-payment', arguments: [] } });
    return data;
}

async function main() {
    let app;
    if (firstBoot) {
        app = await populate(
            () => bootstrap(config),
            sampleData(),
            path.join(assetsDir, 'products.csv'),
        );
        fs.writeFileSync(populatedMarker, new Date().toISOString() + '\n');
    } else {
        app = await bootstrap(config);
    }
    // One process: the job queue (the plugin's event deliveries) runs in the server.
    await app.get(JobQueueService).start();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const rss = Math.round(process.memoryUsage().rss / 1048576);
    // One line a script can wait for.
    console.log(
        `fast-seller-vendure ready on http://${host}:${port}/admin-api (${firstBoot ? 'first boot, sample data' : 'boot'} ${Math.round(ms)} ms, rss ${rss} MB)`,
    );
    const stop = async () => {
        await app.close();
        process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
