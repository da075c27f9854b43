"""Web chat widget channel: `/widget.js` for any page, chat over WebSocket `/ws/chat`."""
