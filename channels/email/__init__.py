"""Email channel: IMAP in (IDLE, polling fallback), SMTP out, threads that stay threads."""
