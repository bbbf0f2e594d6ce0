"""SendAPI (SMS, WhatsApp sessions, email) — the provider's pieces that stand without the seam.

(Notes on what exists and what the go-live integration needs are completed with the last step.)
"""
