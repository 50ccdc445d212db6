#!/usr/bin/env node
/*
 * Local Cosmos DB (NoSQL API) emulator for `make run`, tests and benchmarks.
 *
 * A thin launcher around @vercel/cosmosdb-server 1.0.1 (in-memory, HTTPS with the package's bundled
 * self-signed cert). The azure-cosmos Python SDK turns TLS verification off by itself when the endpoint
 * host is "localhost" or "127.0.0.1" (azure/cosmos/aio/_asynchronous_request.py), so clients need no
 * extra setting as long as they use https://127.0.0.1:PORT/ or https://localhost:PORT/.
 *
 *   node tools/cosmos_emulator.js --port N [--host 127.0.0.1] [--verbose]
 *
 * Prints one line "cosmos emulator ready on https://HOST:PORT/" to stdout once it listens.
 * --verbose also logs "METHOD URL -> STATUS" for every request to stdout.
 *
 * The patches below reach into the package's internals (route table, Items._data/_index), which is why
 * package.json pins the exact version. Each patch names the gap it closes.
 *
 * Findings, checked with azure-cosmos 4.17.1 (aio client) against 1.0.1 (tests/test_emulators.py pins
 * the ones the app relies on):
 *
 * 1a. Missing resources
 *     - read_item of a missing document answered 500 (TypeError in read-document.js).      PATCHED -> 404
 *     - delete_item / replace_item / patch_item of a missing document, read of a missing container or
 *       database, and any item operation on a missing container answered 404 but with the body
 *       {"message": ""}. The SDK already raised CosmosResourceNotFoundError; PATCHED so every 404 carries
 *       {"code": "NotFound", "message": ...} like the service.
 * 1b. Transactional batch (execute_item_batch)
 *     - The package reads the partition key only from each operation; the Python SDK sends it only in the
 *       x-ms-documentdb-partitionkey header. Create/Upsert worked by accident (they take the key from the
 *       body), Read/Replace/Delete answered 500.                                 PATCHED: header fallback.
 *     - Patch inside a batch answered 400 "not supported".                         PATCHED: supported.
 *     - Not atomic: a failing operation left the earlier ones applied.   PATCHED: rolled back, the other
 *       operations report 424 and the response is 207 (the SDK raises CosmosBatchOperationError).
 *     - Documents whose partition key differs from the batch's were accepted.     PATCHED: 400 per op.
 *     - More than 100 operations: 400, like the service.                         PATCHED (was accepted).
 *     - Per-operation ifMatch works (412); ifNoneMatch is ignored.
 * 1c. Conditional writes work unpatched: create of an existing id -> 409; replace/upsert/delete with a
 *     stale etag and MatchConditions.IfNotModified -> 412. Not supported: read_item with
 *     MatchConditions.IfModified (never answers 304); etags are bare UUIDs, not quoted strings.
 * 1d. Queries
 *     - Works: parameterized queries, partition key in the SQL, cross-partition queries (the SDK's
 *       default when no partition_key is given), ORDER BY, TOP (literal or @parameter),
 *       VALUE COUNT(1) and other aggregates, ARRAY_CONTAINS/IN, max_item_count paging and resuming from a
 *       continuation token (by_page(token)). ORDER BY on several fields needs a composite index in the
 *       container's indexing policy, exactly like the service (400 otherwise).
 *     - query_items(..., partition_key=X) ignored the partition key: it returned items of every
 *       partition, and answered 400 "missing partition keys" when the SQL had no filter on the key.
 *                                                    PATCHED: the query only sees partition X.
 *     - Not supported (400 BadRequest from the SQL parser): DISTINCT, OFFSET ... LIMIT, GROUP BY.
 *     - read_all_items reads every partition, as in Azure: azure-cosmos 4.17 has no partition_key for it
 *       (a partition_key keyword is silently ignored); use query_items("SELECT * FROM c", partition_key=X).
 * 1e. Indexing policies are stored as given (read_container returns them) but not enforced: a filter or ORDER BY
 *     on an excluded path is answered as if it were indexed, and every request reports x-ms-request-charge 1
 *     (hard-coded in the package's lib/index.js), so neither what a policy saves nor a write's RU shows here.
 * Other limits: only the first path of the partition key definition counts (no hierarchical keys) and
 * nested paths (/a/b) do not work for point reads; a partition key value of "" or 0 falls back to the
 * id; replace_container drops every document of the container; delete_all_items_by_partition_key
 * answers 400 "no route"; no TTL expiry (default_ttl/ttl are stored but nothing expires), change feed,
 * stored procedures, triggers or throughput/offer APIs; no session tokens; data lives in memory and is
 * lost when the process stops.
 */
"use strict";

const PACKAGE = "@vercel/cosmosdb-server";
const lib = (name) => require(`${PACKAGE}/lib/${name}`);

const { createHttpsServer } = lib("index");
const routes = lib("routes");
const readJson = lib("json").default;
const trueHeader = lib("true-header").default;
const readItems = lib("handler/_read-items").default;
const documentOperations = lib("handler/_document-operations");
const { patchOperation } = lib("handler/_patch-operations");
const { parsePartitionKey } = lib("utils/get-partition-from-header");

const PARTITION_KEY_HEADER = "x-ms-documentdb-partitionkey";
const NOT_FOUND_MESSAGE = "Entity with the specified id does not exist in the system.";

function notFound(res) {
  res.statusCode = 404;
  return { code: "NotFound", message: NOT_FOUND_MESSAGE };
}

function badRequest(res, message) {
  res.statusCode = 400;
  return { code: "BadRequest", message };
}

/** Raw partition key header (JSON such as '["s1"]'), or undefined when absent or "no key" ([{}], []). */
function partitionKeyHeader(req) {
  const header = req.headers[PARTITION_KEY_HEADER];
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw || raw === "[]" || raw === "[{}]") {
    return undefined;
  }
  return raw;
}

/** Partition key value sent in the header, or undefined. Same parsing as the package's own handlers. */
function partitionKeyValue(req) {
  const raw = partitionKeyHeader(req);
  return raw === undefined ? undefined : parsePartitionKey(raw, undefined);
}

// --- Gap 1a: reading a missing document threw a TypeError (500) ---------------------------------------
// read-document.js dereferences the stored document before checking it exists. Answer 404 first.
function guardReadDocument(original) {
  return (account, req, res, params) => {
    const collection = account.database(params.dbId).collection(params.collId);
    const raw = partitionKeyHeader(req);
    if (collection.read() && raw !== undefined) {
      const key = parsePartitionKey(raw, params.docId);
      if (!collection.document(params.docId, key).read()) {
        return notFound(res);
      }
    }
    return original(account, req, res, params);
  };
}

// --- Gap 1b: transactional batch -----------------------------------------------------------------------
// Replaces batch-documents.js: partition key falls back to the request header, Patch is supported,
// documents must belong to the batch's partition, and an atomic batch is all-or-nothing.

function snapshotDocuments(documents) {
  // Stored documents are never mutated in place (replace stores a new object), so copying the two maps
  // is a full snapshot.
  return { data: new Map(documents._data), index: new Map(documents._index) };
}

function restoreDocuments(documents, snapshot) {
  documents._data = snapshot.data;
  documents._index = snapshot.index;
}

const BATCH_OPERATIONS = new Set(["Create", "Upsert", "Read", "Delete", "Replace", "Patch"]);
const BATCH_MAX_OPERATIONS = 100; // the service's limit; larger batches must fail locally too

function runBatchOperation(collection, op) {
  switch (op.operationType) {
    case "Create":
      return documentOperations.createOperation(collection, op);
    case "Upsert":
      return documentOperations.upsertOperation(collection, op);
    case "Read":
      return documentOperations.readOperation(collection, op);
    case "Delete":
      return documentOperations.deleteOperation(collection, op);
    case "Replace":
      return documentOperations.replaceOperation(collection, op);
    case "Patch":
      return patchOperation(collection, {
        id: op.id,
        partitionKey: op.partitionKey,
        ifMatch: op.ifMatch,
        operations: (op.resourceBody || {}).operations || [],
        condition: (op.resourceBody || {}).condition
      });
    default:
      throw new Error(`unsupported batch operation ${op.operationType}`); // filtered out by the caller
  }
}

/** A body whose partition key differs from the batch's would land in another partition: refuse it. */
function partitionMismatch(collection, op, batchKey) {
  if (batchKey === undefined || !op.resourceBody || op.operationType === "Patch") {
    return false;
  }
  return collection.documents._getPartition(op.resourceBody) !== batchKey;
}

async function batchDocuments(account, req, res, { dbId, collId }) {
  const operations = await readJson(req);
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) {
    return notFound(res);
  }
  if (!Array.isArray(operations)) {
    return badRequest(res, "Invalid request body");
  }
  if (operations.length > BATCH_MAX_OPERATIONS) {
    return badRequest(res, `Batch request has more operations than the limit of ${BATCH_MAX_OPERATIONS}.`);
  }
  const unsupported = operations.find(op => !op || !BATCH_OPERATIONS.has(op.operationType));
  if (unsupported !== undefined) {
    return badRequest(res, `Operation type '${(unsupported || {}).operationType}' is not supported in Batch.`);
  }
  const headerKey = partitionKeyHeader(req);
  const batchKey = partitionKeyValue(req);
  const atomic = trueHeader(req, "x-ms-cosmos-batch-atomic");
  const continueOnError = trueHeader(req, "x-ms-cosmos-batch-continue-on-error");
  const snapshot = atomic ? snapshotDocuments(collection.documents) : null;

  let results = [];
  let failedIndex = -1;
  try {
    operations.forEach((input, i) => {
      if (failedIndex >= 0 && !continueOnError) {
        results.push({ statusCode: 424, requestCharge: 0 });
        return;
      }
      const partitionKey = input.partitionKey === undefined ? headerKey : input.partitionKey;
      const op = { ...input, partitionKey };
      const result = partitionMismatch(collection, op, batchKey)
        ? { statusCode: 400, body: { message: "The document's partition key does not match the batch's." } }
        : runBatchOperation(collection, op);
      if (result.statusCode >= 400) {
        failedIndex = failedIndex >= 0 ? failedIndex : i;
        results.push({ statusCode: result.statusCode, requestCharge: 0, message: (result.body || {}).message });
        return;
      }
      const body = result.body;
      const eTag = body ? body._etag : undefined;
      results.push({ statusCode: result.statusCode, requestCharge: 1, eTag, resourceBody: body });
    });
  } catch (err) {
    if (snapshot) restoreDocuments(collection.documents, snapshot);
    throw err;
  }
  if (failedIndex >= 0 && atomic) {
    restoreDocuments(collection.documents, snapshot);
    results = results.map((r, i) => (i === failedIndex ? r : { statusCode: 424, requestCharge: 0 }));
    res.statusCode = 207;
  }
  return results;
}

// --- Gap 1d: queries ignored the partition key header ---------------------------------------------------
// query-documents.js runs the SQL over every document of the container and, without the cross-partition
// header, demands the key in the WHERE clause. With a partition key header, run the SQL over the documents
// of that partition only (paging and continuation tokens work as before).

function samePartition(a, b) {
  return a === b || (a == null && b == null);
}

function queryPartition(account, res, params, key, body, paging) {
  const collection = account.database(params.dbId).collection(params.collId);
  const container = collection.read();
  if (!container) {
    return null; // readItems answers 404
  }
  const documents = collection.documents;
  const inPartition = [...documents._data.values()]
    .map(item => item.read())
    .filter(doc => samePartition(documents._getPartition(doc), key));
  try {
    return documents._getQuery(body.query).exec(inPartition, {
      parameters: body.parameters,
      udf: documents._userDefinedFunctions(),
      compositeIndexes: (container.indexingPolicy || {}).compositeIndexes || [],
      ...paging
    });
  } catch (err) {
    return badRequest(res, err.message);
  }
}

function scopeQueryToPartition(original) {
  return (account, req, res, params) => {
    const raw = partitionKeyHeader(req);
    if (raw === undefined) {
      return original(account, req, res, params);
    }
    const key = parsePartitionKey(raw, undefined);
    return readItems(req, res, "Documents", async paging => {
      const body = await readJson(req);
      if (!body.query) {
        return badRequest(res, "missing query");
      }
      return queryPartition(account, res, params, key, body, paging);
    });
  };
}

// --- Route table patch ---------------------------------------------------------------------------------
// index.js looks up routes.default on every request, so swapping it lets us replace handlers without
// editing node_modules. Handlers are matched by identity with the package's own modules.
const handler = name => lib(`handler/${name}`).default;
const overrides = new Map([
  [handler("read-document"), guardReadDocument(handler("read-document"))],
  [handler("batch-documents"), batchDocuments],
  [handler("query-documents"), scopeQueryToPartition(handler("query-documents"))]
]);

/** Gap 1a: the package answers most 404s with {"message": ""}; give them the service's NotFound body. */
function withCosmosErrorBodies(handler) {
  return async (account, req, res, params) => {
    const body = await handler(account, req, res, params);
    if (res.statusCode === 404 && !(body && body.code)) {
      return notFound(res);
    }
    return body;
  };
}

const originalRoute = routes.default;
routes.default = req => {
  const match = originalRoute(req);
  if (!match) {
    return match;
  }
  const [params, routeHandler] = match;
  return [params, withCosmosErrorBodies(overrides.get(routeHandler) || routeHandler)];
};

// --- Command line and server ---------------------------------------------------------------------------
function parseArgs(argv) {
  const args = { host: "127.0.0.1", port: undefined, verbose: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === "--port" || arg === "-p") {
      args.port = Number.parseInt(argv[(i += 1)], 10);
    } else if (arg === "--host") {
      args.host = argv[(i += 1)];
    } else if (arg === "--verbose") {
      args.verbose = true;
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    throw new Error("usage: node tools/cosmos_emulator.js --port N [--host 127.0.0.1] [--verbose]");
  }
  return args;
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  // keepAlive lets the SDK reuse TLS connections (much faster than one handshake per request). The idle
  // timeout must outlive aiohttp's 15 s pool timeout, or the client reuses a socket the server just closed.
  const server = createHttpsServer({ keepAlive: true });
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 125000;
  if (args.verbose) {
    server.on("request", (req, res) => {
      res.on("finish", () => console.log(`${req.method} ${req.url} -> ${res.statusCode}`));
    });
  }
  server.on("error", err => {
    console.error(`cosmos emulator failed: ${err.message}`);
    process.exit(1);
  });
  server.listen(args.port, args.host, () => {
    const { port } = server.address();
    console.log(`cosmos emulator ready on https://${args.host}:${port}/`);
  });
  // Data is in memory only, so there is nothing to flush: exit at once instead of waiting for idle
  // keep-alive connections to close.
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
}

main();
