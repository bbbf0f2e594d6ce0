"""What every provider and runbook shares: checks, errors, the event and lifecycle model, the
send ledger and controlled sends, the release gate, parameters, retries and the HTTP server helper.

Nothing here knows a provider's wire format; providers map theirs onto these types.
"""
