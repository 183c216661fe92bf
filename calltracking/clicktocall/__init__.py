"""Click-to-call: a CRM request that rings the manager, then the customer, and is followed to its end."""
