"""The web app: Meta's webhook (verification, signature, body limits, parsing, queueing, acknowledging), health and
metrics."""
