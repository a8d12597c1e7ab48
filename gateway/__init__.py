"""sigw, the cross-region social-insurance gateway. This docstring is the map of the house.

One floor per layer; imports point only downward (``tests/architecture/test_layers.py`` holds every module to it)::

    gateway/
      domain/      pure rules, no I/O: participants, access (the whole authorisation matrix), calendar, ids,
                   money, idempotency records, regions; transfer/ (kinds, eligibility, the state machine,
                   pension amounts, where the relationship stays and who pays, medical continuity,
                   unemployment) and settlement/ (the split, filings, records, clearing, reconciliation)
      app/         use cases, one module per aggregate (transfers, settlements, filings, clearing, deliveries,
                   the sweeper), talking to ports (ports.py: repositories, the agency gateway, the clock);
                   one idempotency mechanism (idempotency.py). Never imports gRPC, Redis or protobuf
      wire/        the contract's mapping: sigw.v1 protobuf <-> domain records with request validation, and
                   the one domain-error -> google.rpc.Status mapping; shared by the servicers and the
                   adapters (the agency client, the simulated agency)
      store/       Redis: the client (errors), keys.py for every key, one Lua script per state change, the
                   codec, the audit chain, the embedded server; implements the repositories
      dispatch/    delivery: the outbox router, one lane worker per agency, circuit breaker, the retry policy
      api/         servicers (identify, validate, call one use case, convert), the call guard (metrics, rate
                   limits, error mapping), identity from the certificate, HTTP (/metrics, /healthz)
      security/    PKI, mutual-TLS credentials, field encryption
      cli/         the sigw command, one module per command group, a shared renderer
      config.py    settings and the files they name
      server.py    wiring only: one gateway process with its roles (API, delivery)
      supervisor.py  ``sigw serve``'s process tree: N API processes on one port, a delivery process, the demo
                   agencies, the embedded Redis; /metrics over all of them; restarts
    adapters/      the edges: the agency client (implements app.ports.AgencyGateway) and the simulated agency
                   (a real gRPC server, using domain/ and wire/ only)

Where a new thing goes: a rule goes to ``domain/``; a use case to ``app/`` (a new port beside it in
``app/ports.py``); a new RPC to ``proto/``, its conversion to ``wire/`` and its servicer method to ``api/``; a new
Redis key to ``store/keys.py`` and its commands to the store module of its aggregate. See docs/design.md.
"""

__all__: list[str] = []
