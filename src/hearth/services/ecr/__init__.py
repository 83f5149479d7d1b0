"""Amazon ECR-compatible repositories (no image storage): see repositories.py and provider.py."""
