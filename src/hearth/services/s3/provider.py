"""The S3 API: one method per operation (botocore's names), over the metadata store and body files.

It owns S3's rules: bucket names and location constraints, who may act on a bucket (its owner, or
whom its policy allows), object versions and delete markers, conditional and ranged reads, copies,
listings, multipart uploads and their ETags, and which notifications a change queues. Bodies
stream from the request to a file and from the file to the response; the metadata row (and its
notifications) is committed only after the body is durable. It never parses HTTP (the gateway's
S3 front and the rest-xml protocol do).

The operations are grouped by what they act on, one module each (buckets, objects, listing,
multipart, cors, lifecycle, acl, metrics), over the shared state and helpers of `core.S3Core`;
this class is their union, the one instance the gateway and the other components are given.
"""

from __future__ import annotations

from hearth.services.s3.acl import AclOps
from hearth.services.s3.buckets import BucketOps
from hearth.services.s3.cors import CorsOps
from hearth.services.s3.lifecycle import LifecycleOps
from hearth.services.s3.listing import ListingOps
from hearth.services.s3.metrics import MetricsOps
from hearth.services.s3.multipart import MultipartOps
from hearth.services.s3.objects import ObjectOps


class S3Provider(BucketOps, ObjectOps, ListingOps, MultipartOps, CorsOps, LifecycleOps, AclOps,
                 MetricsOps):
    """Every S3 operation on one set of collaborators (see `core.S3Core`)."""
