"""IAM's server certificates: X.509 certificates and their private keys uploaded for load balancers and
CloudFront (Upload/Get/List/Update/Delete ServerCertificate and their tags).

It owns the certificate's rules as IAM answers them: the body must parse as a PEM certificate (its
expiry is read from it), names are unique per account, and the private key is stored but never
returned by any operation. Hearth terminates no TLS with these certificates: they are kept so that
templates and tools which upload them work unchanged.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam.common import (
    IamOperations,
    already_exists,
    as_datetime,
    clock_now,
    merged_tags,
    no_such_entity,
    paged,
    path_param,
    tags_param,
)
from hearth.services.iam.store import SERVER_CERTIFICATE, IamStore, new_id
from hearth.store.engine import Connection


def _not_found(name: str) -> AwsError:
    return no_such_entity(f"The Server Certificate with name {name} cannot be found.")


def _expiry(body: str) -> float:
    try:
        cert = x509.load_pem_x509_certificate(body.encode())
    except ValueError:
        raise AwsError("MalformedCertificate", "Unable to parse certificate. Please ensure the certificate is in "
                       "PEM format.", 400) from None
    return cert.not_valid_after_utc.timestamp()


class ServerCertificatesProvider(IamOperations):
    def upload_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["ServerCertificateName"], path_param(params)
        # IAM keeps the PEM text without its trailing line break, as it answers it.
        body = params["CertificateBody"].strip()
        cert = {"ServerCertificateName": name, "ServerCertificateId": new_id(SERVER_CERTIFICATE), "Path": path,
                "Arn": self._arn(ctx.account_id, "server-certificate", path, name), "created": clock_now(),
                "expires": _expiry(body), "body": body, "private_key": params["PrivateKey"],
                "chain": (params.get("CertificateChain") or "").strip() or None, "Tags": tags_param(params)}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, SERVER_CERTIFICATE, name, cert):
                raise already_exists(f"The Server Certificate with name {name} already exists.")
        out: dict[str, Any] = {"ServerCertificateMetadata": self._metadata(cert)}
        if cert["Tags"]:
            out["Tags"] = cert["Tags"]
        return out

    def get_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._cert(ctx, params["ServerCertificateName"])
        out: dict[str, Any] = {"ServerCertificateMetadata": self._metadata(cert), "CertificateBody": cert["body"],
                               "Tags": cert.get("Tags") or []}
        if cert.get("chain"):
            out["CertificateChain"] = cert["chain"]
        return {"ServerCertificate": out}

    def list_server_certificates(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        certs = [self._metadata(c) for c in self._store.entities(ctx.account_id, SERVER_CERTIFICATE)
                 if c["Path"].startswith(prefix)]
        return paged(certs, params, "ServerCertificateMetadataList")

    def update_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ServerCertificateName"]
        new_name = params.get("NewServerCertificateName") or name
        with self._store.tx() as conn:
            cert = self._need_cert(conn, ctx.account_id, name)
            if params.get("NewPath"):
                cert["Path"] = path_param({"Path": params["NewPath"]})
            cert["ServerCertificateName"] = new_name
            cert["Arn"] = self._arn(ctx.account_id, "server-certificate", cert["Path"], new_name)
            if new_name != name:
                if not IamStore.insert(conn, ctx.account_id, SERVER_CERTIFICATE, new_name, cert):
                    raise already_exists(f"The Server Certificate with name {new_name} already exists.")
                IamStore.remove(conn, ctx.account_id, SERVER_CERTIFICATE, name)
            else:
                IamStore.write(conn, ctx.account_id, SERVER_CERTIFICATE, name, cert)
        return {}

    def delete_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ServerCertificateName"]
        with self._store.tx() as conn:
            self._need_cert(conn, ctx.account_id, name)
            IamStore.remove(conn, ctx.account_id, SERVER_CERTIFICATE, name)
        return {}

    def tag_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ServerCertificateName"]
        with self._store.tx() as conn:
            cert = self._need_cert(conn, ctx.account_id, name)
            cert["Tags"] = merged_tags(cert.get("Tags") or [], tags_param(params))
            IamStore.write(conn, ctx.account_id, SERVER_CERTIFICATE, name, cert)
        return {}

    def untag_server_certificate(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ServerCertificateName"]
        with self._store.tx() as conn:
            cert = self._need_cert(conn, ctx.account_id, name)
            cert["Tags"] = [t for t in cert.get("Tags") or [] if t["Key"] not in params["TagKeys"]]
            IamStore.write(conn, ctx.account_id, SERVER_CERTIFICATE, name, cert)
        return {}

    def list_server_certificate_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return paged(self._cert(ctx, params["ServerCertificateName"]).get("Tags") or [], params, "Tags")

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _metadata(cert: dict[str, Any]) -> dict[str, Any]:
        return {"Path": cert["Path"], "ServerCertificateName": cert["ServerCertificateName"],
                "ServerCertificateId": cert["ServerCertificateId"], "Arn": cert["Arn"],
                "UploadDate": as_datetime(cert["created"]), "Expiration": as_datetime(cert["expires"])}

    @staticmethod
    def _need_cert(conn: Connection, account: str, name: str) -> dict[str, Any]:
        found = IamStore.read(conn, account, SERVER_CERTIFICATE, name)
        if found is None:
            raise _not_found(name)
        return found

    def _cert(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        with self._store.tx() as conn:
            return self._need_cert(conn, ctx.account_id, name)
