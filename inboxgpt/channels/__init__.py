"""Where replies go: the Graph API's Messenger and Instagram Send API."""
