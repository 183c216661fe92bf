"""The CRM mirror and what the service does with it: matching calls, leads, callbacks, lookup, merging."""
