"""The Lambda API: one provider module per group of operations (functions, invoke, versions, URLs, …)."""
