"""Red Cloud v1 (SMS/MMS): OAuth client credentials, whoami, numbers, idempotent sends, signed webhooks."""
