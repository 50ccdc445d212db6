"""Storage: the snapshot codec (pure), the Blob snapshot store, and the Cosmos DB stores for turns, session
summaries and audit events. The only package that imports `azure.storage` or `azure.cosmos`; every Cosmos
query lives here."""
