"""SendAPI (SMS, WhatsApp sessions, email) behind the provider seam (``provider.py``).

Wire contract: ``shared/contracts/sendapi-v1.md``. ``provider.py`` is the registry's object;
``settings.py`` the parameter file's ``sendapi:`` section; ``contract.py`` the event → state
mapping, envelopes and the signature scheme; ``steps.py`` the go-live checks; ``drills.py`` the
drills; ``runbook_client.py`` the client as the runbook's ``ProviderClient``; ``readiness.yaml``
the release gate. The pieces below were written before the seam and are used as they are.

What exists
-----------
``keys``        ``ApiKeyAuth`` (``httpx.Auth``, ``Authorization: Bearer``) over a ``Secret``;
                ``key_mode`` / ``check_key_mode`` (``sk_live_`` for production only, shown by
                prefix only) → ``KeyModeCheck``.
``client``      ``SendApiClient``: typed resources; ``RetrySettings`` (5xx/timeouts: 1 s doubling
                to 60 s, same ``Idempotency-Key``; 429: ``Retry-After``; other 4xx never retried);
                refuses a POST without a key; ``request_log`` of ``Exchange``; ``rate_limit``.
``ratelimit``   ``RateLimitState`` from ``X-RateLimit-*``; ``RateLimiter`` paces *before* the limit.
``resources``   ``Usage``/``ChannelUsage``, ``SenderId``, ``WhatsAppSession``, ``ContactCheck``,
                ``EmailDomain``/``DnsRecord``, ``Webhook``, ``Acceptance`` — built from either
                envelope and either field spelling, in one place.
``errors``      both error envelopes → ``AuthError`` (401/403) or ``ProviderError`` with
                ``request_id``, ``code`` and a one-line fix per code (``REMEDIES``).
``signing``     ``X-SendAPI-Signature`` sign/verify (rotation lists), envelope freshness,
                ``VerifiedEvent.dedupe_key``.
``mapping``     ``SendApiEvent``, ``SendApiLifecycle`` (rank per channel, never backwards,
                dedupe, freshness), ``SessionHealth``, ``fold_events`` → ``EventBook``.
``dns_checks``  ``check_domain_dns`` (dnspython; ``ResolverSettings``: system resolver or
                nameserver:port) → ``DomainDnsReport`` of ``DnsRecordCheck``.
``sandbox``     ``run_sandbox(SandboxConfig(...))``: the contract on 127.0.0.1, the control plane
                (``SandboxControl``), signed webhooks with retries, seeded faults; outcomes by
                destination are tabled in ``sandbox.config``.

Every check-like result is a frozen dataclass with ``status`` (PASS/WARN/FAIL), a summary, a
remedy and ``to_dict()``; ``steps.py`` turns each into the seam's ``Check``.

How the go-live uses them (result → check; the design notes of the standalone pieces)
---------------------------------------------------
- **key**: ``check_key_mode(secret, params.environment)`` → ``KeyModeCheck`` as is; then
  ``client.usage()`` is the key probe: 200 → PASS, ``AuthError`` 4010–4013 → FAIL with its fix.
- **quota**: each ``Usage.channels`` entry of a declared channel → WARN when ``share`` ≥ the
  parameter's share, FAIL when ``exhausted``; ``client.rate_limit.headroom`` → rate-limit headroom.
- **webhooks**: ``client.webhooks()`` → an ``is_active`` hook whose ``url`` is the declared
  production URL (https), ``subscribes(t)`` for each needed event type, its ``failure_count``;
  the endpoint probe signs test events with ``signing.signed_headers`` (2xx within 5 s, p95 over a
  burst) and sends one with a bad signature (must be refused). The receiver uses
  ``signing.verify_webhook``.
- **SMS**: ``client.sender_ids()`` → the declared sender id ``usable``; ``send_sms`` →
  ``Acceptance``; ``fold_events`` → the lifecycle reaches ``delivered`` (or ``failed`` with
  ``error_code``).
- **WhatsApp**: ``whatsapp_session(id)`` → ``connected``, ``phone_number`` == the declared number,
  ``last_seen_at`` recent; ``contact_check(handset).on_whatsapp``; the send must respect the
  per-session caps (30/min, 1,000/day, 1–3 s apart), kept by the client's ``SessionPacer``
  (``ratelimit``: waits out the spacing and the minute, refuses past the day with
  ``SendPolicyError``) before the server's 429 ``sending_limited``; lifecycle to ``delivered``/``read``; the disconnect drill is
  ``SandboxControl.disconnect_session`` then ``EventBook.sessions[id]`` and the delivery log
  (``SandboxControl.deliveries()``) to show the endpoint acknowledged it.
- **email**: ``email_domains()`` → the ``from`` domain ``verified`` (FAIL otherwise: the run exits 1
  naming it); ``check_domain_dns(domain, resolver=ResolverSettings(...))`` → one check per record
  (PASS / WARN p=none / FAIL with the record to publish); send; lifecycle to ``delivered`` |
  ``bounced`` | ``complained``.
- **drills**: invalid/revoked/expired key (``REVOKED_KEY``, ``EXPIRED_KEY``), scope-limited key
  (``SMS_ONLY_KEY`` → 403 4030), 429 (``SandboxConfig(rate_limit=…)`` or the ``rate_429`` fault),
  reused key with another body (409 ``idempotency_key_mismatch``), missing key (the library
  refuses: ``MissingSecretError`` / ``SendPolicyError``), bad signature and endpoint outage
  (webhook faults), session disconnected (control plane).
- **sandbox detection**: the parameter file says so, or ``GET /_sandbox/`` on the sandbox's own
  port answers ``{"service": "sendapi-sandbox"}``; never probe a production URL.
- **parameters**: ``provider: {kind: sendapi, base_url, api_key_env, channels, sender_id,
  whatsapp_session_id, whatsapp_number, email_from, dns: {nameserver, port}}`` — for the seam to
  settle with ``parameters/sendapi-sandbox.yaml``.

Known gaps: the contract's webhook retries (30 s … 24 h) outlive the receiver's 5-minute
freshness window for the same signed body — a late retry is refused as stale, by design of the
contract; the fault kinds are ``core.sandbox_kit``'s, shared with Red Cloud's sandbox.
"""
