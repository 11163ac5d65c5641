"""A MongoDB stand-in for the test world: mongod 7.0's wire protocol over TLS, in memory.

mockupdb parses and frames the wire protocol (OP_MSG with document sequences, legacy
OP_QUERY for the handshake); mongomock decides query matching and runs aggregation
stages; this package holds the rest — storage that keeps every BSON type exactly,
unique (partial, multikey) indexes, update operators, cursors, the failCommand fail
point, replica-set membership, the command record. Entry point: tests/services/mongod_standin.py. Fidelity notes: ../FIDELITY.md.

    values.py    BSON equality / ordering keys, paths, numeric type rules
    query.py     filter matching, projection, sort, aggregation
    update.py    update operators, arrayFilters, upserts
    schema.py    collection validators ($jsonSchema subset)
    store.py     collections, documents, indexes
    commands.py  command handlers, cursors, fail point
    replset.py   replica-set membership: hello fields, step-down knob, cluster time
    sessions.py  retryable writes: (lsid, txnNumber) -> the reply already given
    cmdlog.py    the command record (ksCommandLog)
"""
