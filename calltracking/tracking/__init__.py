"""Call tracking: where each inbound call came from (a website visit's pool number, a DID), whether the
caller is new and the call a target one, the website's number pool, and the report per source."""
