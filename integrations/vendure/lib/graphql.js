// A small Admin API client over the documents in ../graphql/*.graphql (used by verify.js).
'use strict';

const fs = require('fs');
const path = require('path');

/** Every named operation of the .graphql files, with the fragments it uses appended. */
function loadDocuments(dir = path.join(__dirname, '..', 'graphql')) {
    const blocks = [];
    for (const file of fs.readdirSync(dir).filter(f => f.endsWith('.graphql')).sort()) {
        const text = fs.readFileSync(path.join(dir, file), 'utf8');
        // Top-level definitions start at column 0.
        const parts = text.split(/^(?=(?:query|mutation|fragment) )/m).filter(p => /^(query|mutation|fragment) /.test(p));
        blocks.push(...parts.map(p => p.replace(/^#.*$/gm, '').trim()));
    }
    const fragments = new Map();
    const operations = new Map();
    for (const block of blocks) {
        const [, kind, name] = block.match(/^(query|mutation|fragment) (\w+)/);
        (kind === 'fragment' ? fragments : operations).set(name, block);
    }
    const withFragments = doc => {
        const used = new Set();
        const visit = text => {
            for (const [, name] of text.matchAll(/\.\.\.\s*(\w+)/g)) {
                if (fragments.has(name) && !used.has(name)) {
                    used.add(name);
                    visit(fragments.get(name));
                }
            }
        };
        visit(doc);
        return [doc, ...[...used].map(n => fragments.get(n))].join('\n');
    };
    return new Map([...operations].map(([name, doc]) => [name, withFragments(doc)]));
}

class AdminClient {
    constructor(url, documents = loadDocuments()) {
        this.url = url;
        this.documents = documents;
        this.headers = {};
    }

    async raw(query, variables = {}) {
        const res = await fetch(this.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...this.headers },
            body: JSON.stringify({ query, variables }),
        });
        const body = await res.json();
        return { res, body };
    }

    /** Runs a named document; throws on errors[] (GraphQL errors), returns data. */
    async op(name, variables = {}) {
        const doc = this.documents.get(name);
        if (!doc) {
            throw new Error(`no GraphQL document named ${name}`);
        }
        const { body } = await this.raw(doc, variables);
        if (body.errors) {
            const err = new Error(`${name}: ${body.errors.map(e => e.message).join('; ')}`);
            err.errors = body.errors;
            throw err;
        }
        return body.data;
    }

    async login(username, password) {
        const { res, body } = await this.raw(this.documents.get('Login'), { username, password });
        if (!body.data || body.data.login.__typename !== 'CurrentUser') {
            throw new Error(`login failed: ${JSON.stringify(body)}`);
        }
        this.headers = { authorization: `Bearer ${res.headers.get('vendure-auth-token')}` };
    }

    useApiKey(key) {
        this.headers = { 'vendure-api-key': key };
    }
}

module.exports = { loadDocuments, AdminClient };
