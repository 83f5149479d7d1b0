"""IAM: users, groups, roles, policies, access keys."""
