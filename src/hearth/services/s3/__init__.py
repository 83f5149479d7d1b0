"""S3-compatible object storage: buckets, objects, multipart uploads, event notifications."""
