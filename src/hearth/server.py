"""Process wiring: builds every component from the settings, serves the API, shuts down in order.

It owns the order of start and stop and the few plain HTTP routes under `/_hearth/` (health, code
downloads). It never holds business rules.

Shutdown is a sequence (uvicorn drives the first two steps on SIGINT/SIGTERM):
1. stop accepting new connections; 2. let in-flight requests finish, up to a deadline;
3. unwind the start in reverse: pollers and schedules, the URL front, the async queue, the invoker,
   every execution environment (SIGTERM, a short grace, then kill), the sandbox backend (its zygote),
   the log writer (environments' last logs), and the stores last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Generator
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from hearth import __version__
from hearth.asgi import BodyTooLarge, read_body
from hearth.aws.authz.authorizer import Authorizer
from hearth.aws.authz.usage import UsageRecorder, smallest_policy
from hearth.aws.gateway import AwsGateway
from hearth.aws.keys import KeyStore
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier
from hearth.cluster.forwarding import ROUTE as FORWARD_ROUTE
from hearth.cluster.forwarding import ForwardedInvokes, Forwarder
from hearth.cluster.membership import ONCE_ONLY_LEASES, Membership, default_node_id
from hearth.cluster.metrics import cluster_collector
from hearth.cluster.notices import ClusterNotices
from hearth.cluster.placement import Placement
from hearth.config import DEFAULT_PORT, Settings
from hearth.esm.manager import MappingManager
from hearth.esm.store import MappingStore
from hearth.esm.target import PlatformInvoke
from hearth.events.delivery import DeliveryRouter
from hearth.functions.model import FunctionVersion
from hearth.functions.names import role_session_name
from hearth.functions.service import FunctionService
from hearth.functions.store import open_store
from hearth.http2 import HttpProtocol  # HTTP/2 on the API ports
from hearth.invoke.async_queue import AsyncQueue, AsyncQueueConfig
from hearth.invoke.aws_proxy import serve_proxies
from hearth.invoke.invoker import Invoker
from hearth.invoke.keepalive import make_policy
from hearth.invoke.launch import Credentials, LaunchError
from hearth.invoke.limiter import ConcurrencyLimiter, ConcurrencyStore
from hearth.invoke.logs import FunctionLogs
from hearth.invoke.logwriter import BackgroundLogSink
from hearth.invoke.pool import EnvironmentPool, PoolConfig
from hearth.invoke.provisioned import ProvisionedManager, ProvisionedStore
from hearth.observability import metrics
from hearth.observability.spans import exporter_for
from hearth.runtimes.registry import fallback_mode, installed_runtimes
from hearth.sandbox.backends import choose_backend
from hearth.sandbox.namespace import NamespaceBackend
from hearth.sandbox.netsetup import network_collector, open_network
from hearth.sandbox.network import NetworkPool
from hearth.sandbox.types import IsolationBackend, Sandbox
from hearth.services.apigateway.front import ApiFront
from hearth.services.apigateway.front import match as api_match
from hearth.services.apigateway.rest import RestApiProvider
from hearth.services.apigateway.store import ApiStore
from hearth.services.apigateway.v2 import HttpApiProvider
from hearth.services.apigateway.websocket import Connections, ManagementProvider
from hearth.services.cloudformation.component import CloudFormation
from hearth.services.cloudformation.resources.custom import ROUTE as CFN_RESPONSE_ROUTE
from hearth.services.dynamodb.esm_source import DynamoDBStreamSource
from hearth.services.dynamodb.items_api import ItemsProvider
from hearth.services.dynamodb.kinesis_destinations import KinesisDestinationsProvider, KinesisForwarder
from hearth.services.dynamodb.partiql import PartiqlProvider
from hearth.services.dynamodb.reads_api import ReadsProvider
from hearth.services.dynamodb.store import TableStore
from hearth.services.dynamodb.streams_api import StreamsProvider
from hearth.services.dynamodb.tables_api import TablesProvider
from hearth.services.dynamodb.ttl import TtlSweeper
from hearth.services.ec2.lambda_vpc import LambdaVpc
from hearth.services.ec2.provider import Ec2Provider
from hearth.services.ec2.store import Ec2Store
from hearth.services.ecr.provider import EcrProvider
from hearth.services.ecr.repositories import RepositoryStore
from hearth.services.events.component import EventBridge, clock_for
from hearth.services.iam.certificates import ServerCertificatesProvider
from hearth.services.iam.credentials import ServiceCredentialsProvider
from hearth.services.iam.policies import IamPolicyProvider
from hearth.services.iam.principals import key_source, policy_source
from hearth.services.iam.provider import IamProvider
from hearth.services.iam.store import IamStore
from hearth.services.kinesis.delivery import KinesisDelivery
from hearth.services.kinesis.provider import KinesisProvider
from hearth.services.kinesis.streams import StreamService
from hearth.services.kms.keys import KeyRegistry
from hearth.services.kms.provider import KmsProvider
from hearth.services.lambda_.code_signing import CodeSigningProvider, CodeSigningStore
from hearth.services.lambda_.code_url import CodeUrlSigner, serve_code_download
from hearth.services.lambda_.concurrency import ConcurrencyProvider
from hearth.services.lambda_.esm import EventSourceMappingProvider
from hearth.services.lambda_.event_invoke_config import EventInvokeConfigProvider, EventInvokeConfigStore
from hearth.services.lambda_.invoke_api import LambdaInvokeProvider
from hearth.services.lambda_.layers import LambdaLayersProvider
from hearth.services.lambda_.policies import LambdaPolicyProvider
from hearth.services.lambda_.provider import LambdaProvider
from hearth.services.lambda_.provisioned import ProvisionedConcurrencyProvider, target_resolver
from hearth.services.lambda_.stream_api import LambdaStreamProvider
from hearth.services.lambda_.urls import FunctionUrlProvider, UrlConfigStore
from hearth.services.lambda_.versions import LambdaVersionsProvider
from hearth.services.logs.provider import LogsProvider
from hearth.services.logs.store import LogStore
from hearth.services.logs.subscriptions import SubscriptionDelivery
from hearth.services.logs.targets import LogsDelivery
from hearth.services.s3.files import ObjectFiles
from hearth.services.s3.notifications import Dispatcher
from hearth.services.s3.provider import S3Provider
from hearth.services.s3.store import S3Store
from hearth.services.sns.provider import SnsDelivery, SnsProvider
from hearth.services.sns.signing import CERT_PATH as SNS_CERT_PATH
from hearth.services.sns.topics import TopicService
from hearth.services.sqs.provider import SqsDelivery, SqsProvider
from hearth.services.sqs.queues import QueueService
from hearth.services.ssm.parameters import ParameterStore
from hearth.services.ssm.provider import SsmProvider
from hearth.services.sts.provider import StsProvider, role_trusts_service
from hearth.services.sts.sessions import SessionStore
from hearth.store.blobs import BlobStore
from hearth.store.engine import use_engine
from hearth.store.postgres import DatabaseUnavailable, PostgresEngine, is_postgres_url
from hearth.tls import default_hosts, ensure_tls
from hearth.urls.front import UrlFront
from hearth.urls.front import match as url_match

log = logging.getLogger("hearth")

# A function environment's role session lasts AWS's longest role session; environments are started with
# their credentials in their variables, so an environment lives no longer than this (the pool retires it).
FUNCTION_SESSION_S = 12 * 3600
LAMBDA_SERVICE = "lambda.amazonaws.com"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Hearth:
    """Every long-lived component of one Hearth server, started and stopped together.

    `start` builds each component with its collaborators (constructor arguments, nothing set
    afterwards) in dependency order and registers how to stop it on one exit stack at once; `stop`
    unwinds that stack, so components stop in the reverse order of their start, and a start that
    failed halfway stops exactly what it had started.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = False
        self.isolation_warning: str | None = None
        # What the ASGI app and health() read before start has finished: set as they are built.
        self.backend: IsolationBackend | None = None
        self.network: NetworkPool | None = None
        self.gateway: AwsGateway | None = None
        self.pool: EnvironmentPool | None = None
        self.url_front: UrlFront | None = None
        self.api_front: ApiFront | None = None
        self.queues: QueueService | None = None
        self.membership: Membership | None = None  # scale-out: a cluster's node (with --database)
        self.forwarded_invokes: ForwardedInvokes | None = None  # scale-out: invocations other nodes send here
        self.placement: Placement | None = None  # scale-out: where a synchronous invocation runs
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        s = self.settings
        on_stop = self._stack
        s.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        s.data_dir.chmod(0o700)
        # --- scale-out (issue 18): with --database, every ComponentDb opened on the data directory from
        # here on keeps its state in PostgreSQL (one schema per component) instead of SQLite files.
        # Membership (this node's row and heartbeat) and leases for work that must run once per cluster.
        database: PostgresEngine | None = None
        if s.database_url is not None:
            database = PostgresEngine(s.database_url)
            use_engine(s.data_dir, database)
            self.membership = Membership(s.data_dir, s.node_id or default_node_id(s.host, s.port),
                                         s.cluster_address, s.account_concurrency, heartbeat_s=s.cluster_heartbeat_s,
                                         lease_s=s.cluster_lease_s, dead_after_s=s.cluster_dead_after_s,
                                         load=self._cluster_load, warm=self._cluster_warm)
            on_stop.callback(self.membership.close)
            self.membership.want(ONCE_ONLY_LEASES)
            self.membership.start()
            on_stop.push_async_callback(self.membership.stop)  # leases handed back after the work stopped
        # --- end scale-out
        # Identity: IAM's entities and STS's sessions; their keys verify like the root keys do.
        self.iam_store = IamStore(s.data_dir)
        on_stop.callback(self.iam_store.close)
        self.sessions = SessionStore(s.data_dir, self.iam_store, time_scale=s.session_time_scale)
        on_stop.callback(self.sessions.close)
        self.keys, generated = KeyStore.load(s, sources=[key_source(self.iam_store), self.sessions.lookup])
        self.sts = StsProvider(self.iam_store, self.sessions)
        self._function_sessions: dict[tuple[str, str, str], tuple[Credentials, float]] = {}
        self.usage = UsageRecorder()  # what roles did, for `hearth policy suggest`
        self._root_verifier = SigV4Verifier(self.keys, s.auth, s.account_id)
        if generated:
            key = self.keys.admin_key()
            print(
                "hearth: generated an admin key pair in "
                f"{s.data_dir / 'keys.json'} (mode 0600).\n"
                f"        Use it with: eval \"$({env_command(s)})\"\n"
                f"        (access key id {key.access_key_id}, account {key.account_id})",
                file=sys.stderr, flush=True,
            )
        if s.auth == "any":
            print("hearth: WARNING: --auth any accepts ANY well-formed signature. Development only; "
                  "bound to loopback.", file=sys.stderr, flush=True)
        # Stores and logs first: everything after may write to them, so they close last.
        self.store = open_store(s.data_dir)
        on_stop.callback(self.store.close)
        self.blobs = BlobStore(s.data_dir)
        on_stop.callback(self.blobs.close)  # scale-out: its shared archive store (PostgreSQL engine)
        self.code_signer = CodeUrlSigner.load(s.data_dir)
        self.log_store = LogStore(s.data_dir)
        on_stop.callback(self.log_store.close)
        self.log_writer = BackgroundLogSink(self.log_store)
        on_stop.callback(self.log_writer.close)  # after the pool: the environments' last logs are queued
        function_logs = FunctionLogs(self.log_writer)
        # The data plane: isolation, environments, admission, the invoker. The host's runtimes are probed
        # once, now, beside the backend's start: otherwise the first CreateFunction of a new server stays
        # Pending while every interpreter is probed.
        fallback_mode()  # an unknown HEARTH_RUNTIME_FALLBACK stops the start, not a function later
        runtimes_probed = asyncio.create_task(asyncio.to_thread(installed_runtimes))
        # -- Sandbox networking (issue 19): the egress bridge, its packet filter and the pools of
        # prepared network namespaces; only the namespace backend uses them (see hearth.sandbox.network).
        self.network = await open_network(s) if s.network == "egress" and s.isolation != "process" else None
        if self.network is not None:
            on_stop.push_async_callback(self.network.close)
            on_stop.callback(metrics.REGISTRY.add_collector(network_collector(self.network)))
        # -- end of sandbox networking
        backend, self.isolation_warning = await choose_backend(s.isolation, s.data_dir,
                                                               favor_dynmods=s.cgroup_favor_dynmods,
                                                               network=self.network)
        await runtimes_probed
        self.backend = backend
        on_stop.push_async_callback(backend.close)
        if self.isolation_warning:
            print(f"hearth: WARNING: {self.isolation_warning}", file=sys.stderr, flush=True)
        self.invoke_metrics = metrics.InvokeMetrics(metrics.REGISTRY)
        # With HTTPS on, functions reach Hearth over it, trusting the local CA (aws:SecureTransport true).
        tls = ensure_tls(s.data_dir, default_hosts(s.host)) if s.https_port is not None else None
        pool = self.pool = EnvironmentPool(
            backend,
            # Renewal: an environment is not reused once its role session could have less than a twelfth
            # of its life left (sessions are shared while in their first twelfth, see _credentials).
            PoolConfig(keep_alive_s=s.keep_alive_s, snapstart_latest=s.snapstart_latest,
                       max_env_age_s=FUNCTION_SESSION_S / s.session_time_scale * 10 / 12),
            credentials=self._credentials,
            endpoint_url=(f"https://127.0.0.1:{s.https_port}" if s.https_port is not None else s.endpoint_url),
            api_ca_dir=tls.ca_cert.parent if tls is not None else None,
            start_aws_proxy=self._start_aws_proxy,
            policy=make_policy(s.keep_alive_policy, s.keep_alive_s),
            metrics=self.invoke_metrics,
            init_logs=function_logs.write,  # SnapStart templates' INIT logs, written like an invocation's
            prepare_code=self._fetch_code if s.database_url is not None else None,  # scale-out: shared archives
        )
        pool.start()
        on_stop.push_async_callback(pool.close)
        self.limiter = ConcurrencyLimiter(s.account_concurrency, ConcurrencyStore(s.data_dir),
                                          cluster=self.membership)  # scale-out: reserved concurrency cluster-wide
        on_stop.callback(self.limiter.close)
        on_stop.callback(metrics.REGISTRY.add_collector(self._collect_metrics))
        # Issue 16: OpenTelemetry spans of every invocation's platform phases (HEARTH_OTLP_ENDPOINT).
        spans = exporter_for(s.otlp_endpoint)
        if spans is not None:
            on_stop.callback(spans.close)  # after the invoker (callbacks run in reverse): nothing is lost
        # Scale-out: a synchronous invocation runs where an environment is warm or load is least, forwarded
        # between nodes with the cluster's token (hearth.cluster.placement, .forwarding).
        if self.membership is not None:
            forwarder = Forwarder(self.membership.forward_token)
            on_stop.push_async_callback(forwarder.close)
            self.placement = Placement(self.membership, pool, self.limiter.in_flight, forwarder)
        self.invoker = Invoker(pool, function_logs, limiter=self.limiter, metrics=self.invoke_metrics,
                               spans=spans, elsewhere=self.placement)
        on_stop.push_async_callback(self.invoker.close)
        # The control plane: SnapStart versions wait for their snapshot (the data plane's) while Pending.
        # -- EC2 networking and Lambda's VPC side (issue 19): subnets map to host networks (--vpc-network);
        # a VPC function's network is prepared while it is Pending.
        self.ec2_store = Ec2Store(s.data_dir)
        on_stop.callback(self.ec2_store.close)
        self.lambda_vpc = LambdaVpc(self.ec2_store, s.vpc_networks, self.network)
        self.ec2 = Ec2Provider(self.ec2_store, on_groups_changed=self.lambda_vpc.groups_changed)
        # -- end of EC2 networking
        self.functions = FunctionService(s, self.store, self.blobs, snapshots=self.invoker,
                                         vpc_networks=self.lambda_vpc)
        self.functions.add_listener(self.lambda_vpc.on_function_change)  # Lambda's interfaces go with it
        on_stop.push_async_callback(self.functions.close)
        self.functions.add_listener(self._on_function_change)
        await self.functions.recover()
        if self.membership is not None:  # scale-out: runs what other nodes forward; the cluster's metrics
            forwarded = self.forwarded_invokes = ForwardedInvokes(self.membership.forward_token, self.functions,
                                                                  self.invoker)
            on_stop.callback(metrics.REGISTRY.add_collector(
                cluster_collector(self.membership, self.placement, lambda: forwarded.received)))
        # The router is how every component delivers to every other (queues, topics, functions, buses).
        self.router = DeliveryRouter()
        # Scale-out: in a cluster, a send through another node wakes the waiters here through LISTEN/NOTIFY
        # (hearth.cluster.notices); they also look again every 5 s in case a notice was lost.
        notices = ClusterNotices(database, self.membership.node_id) if database and self.membership else None
        self.queues = QueueService(s.data_dir, recheck_s=5.0 if self.membership is not None else None,
                                   announce=partial(notices.announce, "sqs") if notices is not None else None)
        on_stop.callback(self.queues.close)
        if notices is not None:
            notices.on("sqs", self.queues.wake)
            notices.start()
            on_stop.callback(notices.close)  # before the queues close (callbacks run in reverse)
        self.router.register("sqs", SqsDelivery(self.queues))
        self.topics = TopicService(s.data_dir, self.router, s.endpoint_url,
                                   delivery_logs=self.log_writer)  # SNS delivery status logging
        on_stop.callback(self.topics.close)
        self.router.register("sns", SnsDelivery(self.topics))
        self.streams = StreamService(s.data_dir)
        on_stop.callback(self.streams.close)
        # EventBridge rule targets: Kinesis streams and CloudWatch Logs groups take deliveries too.
        self.router.register("kinesis", KinesisDelivery(self.streams))
        self.router.register("logs", LogsDelivery(self.log_store))
        # Asynchronous invocation: the durable event queue, its configs, the router's "lambda" handler.
        self.event_configs = EventInvokeConfigStore(s.data_dir)
        on_stop.callback(self.event_configs.close)
        self.functions.add_listener(self._on_function_change_async)
        self.async_queue = AsyncQueue(s.data_dir, self.invoker, self.functions, self.router,
                                      policies=self.event_configs, config=AsyncQueueConfig.from_settings(s),
                                      node_id=self.membership.node_id if self.membership else None)
        if self.membership is not None:  # scale-out: the events of a node that died or left run here
            self.membership.on_departure(self.async_queue.adopt)
        on_stop.push_async_callback(self.async_queue.close)  # running events drain briefly; the rest stay stored
        self.router.register("lambda", self.async_queue.deliver_to_function)
        # S3: metadata in the component db, bodies in <data-dir>/s3, notifications through the router.
        self.s3_store = S3Store(s.data_dir)
        on_stop.callback(self.s3_store.close)
        self.s3_files = ObjectFiles(s.data_dir)
        self.s3_files.sweep(self.s3_store.referenced_blobs())  # bodies a crash left without a row
        self.s3_dispatcher = Dispatcher(self.s3_store, self.router)
        on_stop.push_async_callback(self.s3_dispatcher.close)
        self.s3 = S3Provider(self.s3_store, self.s3_files, self.s3_dispatcher, region=s.region,
                             service_allows=lambda arn, principal, source, account: self.functions is not None
                             and self.functions.allows_service(arn, principal, source, source_account=account),
                             sweep_gate=self._lease_gate("s3-lifecycle"))  # scale-out: one node sweeps
        # Event source mappings' store, opened here because LambdaProvider tags mappings by their ARN.
        mappings = MappingStore(s.data_dir)
        on_stop.callback(mappings.close)
        lambda_providers: list[object] = [
            ConcurrencyProvider(self.functions, self.limiter),
            LambdaProvider(s, self.store, self.functions, self.code_signer, reserved_concurrency=self.limiter.reserved,
                           role_assumable=lambda arn: role_trusts_service(self.iam_store, arn, LAMBDA_SERVICE),
                           s3_code=self.s3.read_bytes, vpc_check=self.lambda_vpc.validate, mappings=mappings),
            LambdaInvokeProvider(self.functions, self.invoker, self.async_queue),
            EventInvokeConfigProvider(self.functions, self.event_configs),
            LambdaVersionsProvider(self.functions),
            LambdaPolicyProvider(self.functions),
            LambdaLayersProvider(s, self.functions.layers, self.code_signer, s3_code=self.s3.read_bytes),
        ]
        # Provisioned concurrency: durable configurations; their environments are re-created now.
        self.provisioned = ProvisionedManager(pool, target_resolver(self.functions), self.limiter,
                                              ProvisionedStore(s.data_dir),
                                              max_env_age_s=FUNCTION_SESSION_S / s.session_time_scale * 10 / 12,
                                              gate=self._lease_gate("provisioned-concurrency"))  # scale-out
        on_stop.push_async_callback(self.provisioned.close)  # before the pool: no re-creation while it stops
        self.functions.add_listener(self._on_function_change_provisioned)
        lambda_providers.append(ProvisionedConcurrencyProvider(self.functions, self.provisioned, self.limiter))
        self.provisioned.start()
        # Function URLs: configurations (a provider), InvokeWithResponseStream, and the HTTP front.
        self.url_configs = UrlConfigStore(s.data_dir, on_hosts=self._sandbox_names)  # DNS in sandboxes (issue 19)
        on_stop.callback(self.url_configs.close)
        self.functions.add_listener(self.url_configs.on_function_change)
        lambda_providers += [FunctionUrlProvider(self.url_configs, self.functions, s.endpoint_url),
                             LambdaStreamProvider(self.functions, self.invoker)]
        self.url_front = UrlFront(s, self.keys, self.url_configs, self.functions, self.invoker)
        on_stop.push_async_callback(self.url_front.close)  # in-flight URL invocations finish before the invoker
        # The bus registers the router's "events" handler; it stops before what it delivers to.
        # Scale-out: in a cluster a schedule fires on one node, once per moment.
        self.eventbridge = EventBridge(s.data_dir, self.router, clock_for(s.schedule_time_scale),
                                       fire_gate=self.membership.fires_schedule if self.membership else None)
        on_stop.push_async_callback(self.eventbridge.stop)
        # DynamoDB: tables, items and their stream records in one store; TTL deletions in the background.
        self.tables = TableStore(s.data_dir)
        on_stop.callback(self.tables.close)
        self.ttl_sweeper = TtlSweeper(self.tables, gate=self._lease_gate("dynamodb-ttl"))  # scale-out: one node
        on_stop.push_async_callback(self.ttl_sweeper.close)
        # DynamoDB's Kinesis streaming destinations: queued item changes appended to Kinesis streams; and
        # the KMS registry of AWS managed keys (tables encrypted "with the AWS managed key" name one).
        self.kinesis_forwarder = KinesisForwarder(self.tables, self.streams,
                                                  gate=self._lease_gate("dynamodb-kinesis"))  # scale-out: one node
        on_stop.push_async_callback(self.kinesis_forwarder.close)
        self.kms_keys = KeyRegistry(s.data_dir)
        on_stop.callback(self.kms_keys.close)
        # Event source mappings: durable mappings and their pollers (first to stop: no batch starts into
        # components that are stopping).
        self.esm = MappingManager(mappings, self.queues, self.streams,
                                  PlatformInvoke(self.functions, self.invoker,
                                                 recursion_allowed=self.event_configs.recursion_allowed),
                                  self.router.deliver,
                                  stream_sources={"dynamodb": partial(DynamoDBStreamSource, self.tables)},
                                  gate=self._lease_gate("event-source-mappings"))  # scale-out: one poller each
        on_stop.push_async_callback(self.esm.stop)
        lambda_providers.append(EventSourceMappingProvider(self.functions, self.queues, self.streams, self.esm))
        # Code signing configurations: stored and reported as AWS does; signatures are never checked.
        self.code_signing = CodeSigningStore(s.data_dir)
        on_stop.callback(self.code_signing.close)
        self.functions.add_listener(self.code_signing.on_function_change)
        lambda_providers.append(CodeSigningProvider(self.functions, self.code_signing))
        # SSM Parameter Store (CloudFormation's SSM parameter types and CDK's bootstrap read it too).
        self.parameters = ParameterStore(s.data_dir)
        on_stop.callback(self.parameters.close)
        # ECR: repositories and their settings, no images (CDK's bootstrap stack makes one).
        self.repositories = RepositoryStore(s.data_dir)
        on_stop.callback(self.repositories.close)
        # API Gateway: REST and HTTP API definitions, both control planes, and the execute-api front.
        self.api_store = ApiStore(s.data_dir)
        on_stop.callback(self.api_store.close)
        ws_connections = Connections()  # live WebSocket connections, shared with the @connections API
        self.api_front = ApiFront(self.api_store, self.functions, self.invoker,
                                  SigV4Verifier(self.keys, s.auth, s.account_id), self.log_writer, ws_connections,
                                  credentials=self._api_credentials, endpoint_url=self._loopback_url())
        on_stop.push_async_callback(self.api_front.close)  # in-flight API invocations finish before the invoker
        self.gateway = AwsGateway(s, self.keys, {
            "lambda": lambda_providers,
            # confsvc: subscription filters deliver new PutLogEvents events through the router.
            "logs": [LogsProvider(self.log_store, SubscriptionDelivery(self.router))],
            "sqs": [SqsProvider(self.queues, s.endpoint_url)],
            "sns": [SnsProvider(self.topics)],
            "events": [self.eventbridge.provider],
            "kinesis": [KinesisProvider(self.streams)],
            "ssm": [SsmProvider(self.parameters)],
            "ecr": [EcrProvider(self.repositories)],
            "apigateway": [RestApiProvider(self.api_store, self.api_front.test_invoke)],
            "apigatewayv2": [HttpApiProvider(self.api_store, s.endpoint_url)],
            "apigatewaymanagementapi": [ManagementProvider(ws_connections)],
            "dynamodb": [TablesProvider(self.tables, self.kms_keys.managed_key_arn), ItemsProvider(self.tables),
                         ReadsProvider(self.tables), PartiqlProvider(self.tables),
                         KinesisDestinationsProvider(self.tables, self.streams)],
            "kms": [KmsProvider(self.kms_keys)],
            "dynamodbstreams": [StreamsProvider(self.tables)],
            "iam": [IamProvider(self.iam_store), IamPolicyProvider(self.iam_store),
                    ServiceCredentialsProvider(self.iam_store), ServerCertificatesProvider(self.iam_store)],
            "sts": [self.sts],
            "s3": [self.s3],
            "ec2": [self.ec2],  # networking subset (issue 19)
        }, authorizer=Authorizer(policy_source(self.iam_store), mode=s.iam_mode, usage=self.usage,
                                 # resource-based policies the authorizer weighs itself (Lambda judges its own)
                                 resource_policies={"sqs": self.queues.resource_policy,
                                                    "sns": self.topics.resource_policy,
                                                    "s3": self.s3_store.resource_policy},
                                 # function policies grant users and roles of the function's own account
                                 own_account_policies={"lambda": self.functions.resource_policy}))
        # CloudFormation creates resources through the gateway's other services, so it joins it last and
        # stops first (its running stack operations end before the services they call).
        self.cloudformation = CloudFormation(s.data_dir, self.gateway, self.parameters, pool.sandbox_endpoint)
        on_stop.push_async_callback(self.cloudformation.close)
        self.gateway.add_service("cloudformation", [self.cloudformation.provider])
        self.cloudformation.start()
        self.async_queue.start()  # last: resumed events may deliver to any registered component
        if self.membership is not None:
            self.membership.report_departures()  # scale-out: take over what departed nodes left
        self.esm.start()  # queue and stream pollers, now that queues, streams and the invoker are up
        self.ttl_sweeper.start()
        self.kinesis_forwarder.start()
        self.eventbridge.start()  # schedules and pending deliveries, now that every target handler is registered
        self.s3_dispatcher.start()  # queued notifications (also those a crash left undelivered)
        self.s3.start()  # lifecycle expiration
        self.started = True

    def _cluster_warm(self) -> dict[tuple[str, str], int]:
        """Scale-out: the versions this node has idle environments of, in its heartbeat."""
        return self.pool.warm_versions() if self.started and self.pool is not None else {}

    def _cluster_load(self) -> int:
        """Scale-out: this node's load in its heartbeat (invocations running now)."""
        return self.limiter.in_flight() if self.started else 0

    async def _fetch_code(self, fv: FunctionVersion) -> None:
        """Scale-out: a version created through another node has its archives in the database only; fetch
        and extract them here before its first environment starts (a no-op once they are)."""
        missing = [d.name for d in (fv.code_dir, *fv.layer_dirs) if not d.is_dir()]
        for sha in missing:
            await asyncio.to_thread(self.blobs.extract, sha)

    def _lease_gate(self, lease: str) -> Callable[[], bool] | None:
        """Scale-out: in a cluster, background work runs on the holder of its lease only."""
        return self.membership.gate(lease) if self.membership is not None else None

    def begin_shutdown(self) -> None:
        """Before uvicorn waits for in-flight requests: end the waits that would hold them (SQS long polls);
        in a cluster, take no more forwarded invocations and tell the other nodes (draining)."""
        if self.forwarded_invokes is not None:
            self.forwarded_invokes.accepting = False
        if self.membership is not None:
            self.membership.drain()
        if self.queues is not None:
            self.queues.stop_waiting()

    async def stop(self) -> None:
        """Stop everything `start` started, in reverse order (a failure in one does not keep the rest up)."""
        self.started = False
        await self._stack.aclose()

    def _credentials(self, fv: FunctionVersion) -> Credentials:
        """A session of the function's execution role, assumed by Lambda: never a long-term key.

        Environments of one function share a session while it is young (its first twelfth), as AWS's
        environments of a function do: a burst of cold starts costs one durable write, not one each.
        A shared session that stopped verifying (its role was deleted or re-created) is not reused.
        """
        key = (fv.account_id, fv.role, fv.function_arn)
        cached = self._function_sessions.get(key)
        now = time.time()
        if cached is not None and now < cached[1] and self.sessions.lookup(cached[0].access_key_id) is not None:
            return cached[0]
        try:
            issued = self.sts.service_session(fv.role, LAMBDA_SERVICE, role_session_name(fv.name), FUNCTION_SESSION_S)
        except LookupError:
            raise LaunchError("Lambda.InvalidRole",
                              "The role defined for the function cannot be assumed by Lambda.") from None
        creds = Credentials(issued.access_key_id, issued.secret_access_key, issued.session_token)
        self._function_sessions[key] = (creds, now + (issued.expires - now) / 12)
        return creds

    def _api_credentials(self, account_id: str) -> tuple[str, str]:
        """API Gateway's AWS service integrations call Hearth with the root key of the API's account
        (Hearth does not assume an integration's CredentialsArn role yet)."""
        key = self.keys.key_for_account(account_id)
        return key.access_key_id, key.secret_access_key

    def policy_suggestion(self, scope: Scope) -> tuple[int, dict[str, Any]]:
        """`hearth policy suggest ROLE`: the smallest policy allowing what the role's sessions did.

        Only an account's root may ask (the request is SigV4-signed like an API call), and only about
        its own account's roles."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        query_string = scope.get("query_string", b"").decode("latin-1")
        first = {k: v[0] for k, v in parse_qs(query_string).items()}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").partition("?")[0]
        try:
            principal, _ = self._root_verifier.verify(
                SignedRequest(scope["method"], raw_path, query_string, headers, b""), first)
        except AuthFailure as exc:
            return 403, {"message": exc.message}
        if not principal.is_root:
            return 403, {"message": "Only the account's root key may read what its roles did."}
        role = first.get("role", "")
        arns = [a for a in self.usage.identities()
                if a.split(":")[4] == principal.account_id and a.rsplit("/", 1)[-1] == role]
        if not arns:
            return 404, {"message": f"No call of role {role} was recorded since the server started."}
        return 200, smallest_policy(set().union(*(self.usage.used(a) for a in arns)))

    def _loopback_url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.settings.port}"

    def _sandbox_names(self, names: tuple[str, ...]) -> None:
        """Function URL hosts resolve inside sandboxes to their loopback, where the AWS API proxy is."""
        if isinstance(self.backend, NamespaceBackend):
            self.backend.set_names(names)

    def _start_aws_proxy(self, sandbox: Sandbox) -> asyncio.Task[None] | None:
        if sandbox.aws_api_sock is None:
            return None
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        port = self.settings.https_port if self.settings.https_port is not None else self.settings.port
        listeners = [sandbox.aws_api_sock]
        # 127.0.0.1:443 inside (HTTPS clients that drop the URL's port, as CDK's custom-resource
        # handlers do) leads to the HTTPS port too; without HTTPS it is closed: connections are refused.
        if sandbox.aws_https_sock is not None:
            if self.settings.https_port is not None:
                listeners.append(sandbox.aws_https_sock)
            else:
                sandbox.aws_https_sock.close()
        return asyncio.create_task(serve_proxies(listeners, host, port))

    def _collect_metrics(self) -> None:
        """Gauges from the owners' statistics, just before a scrape."""
        m = self.invoke_metrics
        names = {arn: arn.rsplit(":", 1)[-1] for arn, _ in self.limiter.in_flight_by_qualifier()}
        m.concurrent.replace({(("function", names[arn]), ("qualifier", q)): n
                              for (arn, q), n in self.limiter.in_flight_by_qualifier().items()})
        by_state = self.pool.statistics()["by_state"] if self.pool is not None else {}
        assert isinstance(by_state, dict)
        m.environments.replace({(("state", str(state)),): float(n) for state, n in by_state.items()})

    def _on_function_change(self, event: str, fv: FunctionVersion) -> None:
        if event == "alias-deleted":  # an alias has no environments of its own
            return
        whole_function = event == "deleted" and fv.version == "$LATEST"
        # Only the changed (or deleted) version's idle environments go; other versions keep theirs.
        keep = fv.revision_id if event == "updated" else None
        version = None if whole_function else fv.version
        asyncio.get_running_loop().create_task(
            self.invoker.retire(fv.function_arn, version=version, keep_revision=keep))

    def _on_function_change_provisioned(self, event: str, fv: FunctionVersion) -> None:
        if event == "deleted" and fv.version == "$LATEST":
            self.provisioned.forget_function(fv.account_id, fv.region, fv.name)
        elif event == "alias-deleted":  # fv.version is the alias's name
            self.provisioned.forget_qualifier(fv.account_id, fv.region, fv.name, fv.version)

    def _on_function_change_async(self, event: str, fv: FunctionVersion) -> None:
        if event == "deleted" and fv.version == "$LATEST":
            self.event_configs.forget_function(fv.account_id, fv.region, fv.name)

    def health(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "status": "running" if self.started else "starting",
            "version": __version__,
            "services": {},
            "isolation": self.backend.name if self.backend else "unknown",
            "isolation_warning": self.isolation_warning,
            "network": self.network.statistics() if self.network else None,  # sandbox networking (issue 19)
            "environments": self.pool.statistics() if self.pool else {},
            "async_events": {},
            "provisioned": {},
            "sqs": {},
            "event_source_mappings": {},
            # The server's own task count (the soak benchmark watches it stay flat under load).
            "process": {"asyncio_tasks": _asyncio_tasks()},
        }
        if self.started:  # every component exists
            assert self.gateway is not None and self.queues is not None
            state.update({
                "services": {name: "running" for name in self.gateway.services},
                "async_events": self.async_queue.statistics(),
                "provisioned": self.provisioned.statistics(),
                "sqs": self.queues.statistics(),
                "event_source_mappings": self.esm.statistics(),
            })
        # Scale-out: the nodes sharing this database and the leases (None: one node on SQLite).
        state["cluster"] = self.membership.status() if self.membership is not None else None
        if state["cluster"] is not None and self.placement is not None:
            state["cluster"]["placement"] = self.placement.statistics()
        if state["cluster"] is not None and self.forwarded_invokes is not None:
            state["cluster"]["placement"]["received"] = self.forwarded_invokes.received
        return state


def _asyncio_tasks() -> int:
    """Tasks of the running event loop (0 when called outside it)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


class HearthApp:
    """The ASGI application: `/_hearth/*` routes, everything else to the AWS gateway."""

    def __init__(self, hearth: Hearth) -> None:
        self.hearth = hearth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":  # WebSocket APIs; nothing else upgrades
            ws_target = api_match(scope)
            if ws_target is not None and self.hearth.api_front is not None:
                await self.hearth.api_front.websocket(scope, receive, send, ws_target)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == FORWARD_ROUTE and self.hearth.forwarded_invokes is not None and scope["method"] == "POST":
            await self.hearth.forwarded_invokes(scope, receive, send)  # scale-out: another node's invocation
            return
        url_target = url_match(scope)  # function URLs (host or /_hearth/url/ form) before anything else
        if url_target is not None and self.hearth.url_front is not None:
            await self.hearth.url_front(scope, receive, send, url_target)
            return
        if path.startswith(CFN_RESPONSE_ROUTE) and scope["method"] == "PUT" and self.hearth.started:
            await self._cfn_response(scope, receive, send)
            return
        api_target = api_match(scope)  # API Gateway APIs (execute-api host or /_hearth/api/ form)
        if api_target is not None and self.hearth.api_front is not None:
            await self.hearth.api_front(scope, receive, send, api_target)
            return
        if path.startswith("/_hearth/"):
            await self._hearth_route(scope, send)
            return
        gateway = self.hearth.gateway
        if gateway is None:
            await _send(send, 503, {"content-type": "application/json"}, b'{"message": "starting"}')
            return
        await gateway(scope, receive, send)

    async def _cfn_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A custom resource's answer (the cfn-response protocol): the token in the path is the credential."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        try:
            body = await read_body(receive, headers, 1_000_000)  # AWS caps a response object at 4 KB of Data
        except BodyTooLarge:
            await _send(send, 413, {"content-type": "text/plain"}, b"response too large")
            return
        status, message = self.hearth.cloudformation.responses.answer(scope["path"][len(CFN_RESPONSE_ROUTE):], body)
        await _send(send, status, {"content-type": "text/plain"}, message.encode())

    async def _hearth_route(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        if path == "/_hearth/health":
            body = json.dumps(self.hearth.health()).encode()
            await _send(send, 200, {"content-type": "application/json"}, body)
        elif path == "/_hearth/metrics" and self.hearth.started:
            await _send(send, 200, {"content-type": metrics.CONTENT_TYPE}, metrics.REGISTRY.render().encode())
        elif path.startswith("/_hearth/code/") and self.hearth.started:
            status, headers, body = await serve_code_download(
                self.hearth.code_signer, self.hearth.blobs, path, scope.get("query_string", b"").decode())
            await _send(send, status, headers, body)
        elif path.startswith(SNS_CERT_PATH) and self.hearth.started:
            # SNS's signing certificate, where its messages' SigningCertURL points (services/sns/signing.py).
            signing = self.hearth.topics.signing
            if path == SNS_CERT_PATH + signing.cert_name:
                await _send(send, 200, {"content-type": "application/x-pem-file"}, signing.cert_pem)
            else:
                await _send(send, 404, {"content-type": "application/json"}, b'{"message": "Not Found"}')
        elif path == "/_hearth/policy/suggest" and self.hearth.started:
            status, answer = self.hearth.policy_suggestion(scope)
            await _send(send, status, {"content-type": "application/json"}, json.dumps(answer).encode())
        else:
            await _send(send, 404, {"content-type": "application/json"}, b'{"message": "Not Found"}')

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.hearth.start()
                except Exception as exc:
                    log.exception("hearth failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
                print(f"hearth: ready on {self.hearth.settings.endpoint_url} "
                      f"(isolation: {self.hearth.health()['isolation']})", file=sys.stderr, flush=True)
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.hearth.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    import ipaddress

    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def serve(settings: Settings) -> None:
    """Run Hearth until SIGINT/SIGTERM."""
    if settings.database_url is not None:  # scale-out: an unreachable database is a clear error, not a trace
        if not is_postgres_url(settings.database_url):
            raise SystemExit("hearth: --database takes a postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE URL")
        try:
            PostgresEngine(settings.database_url).check()
        except DatabaseUnavailable as exc:
            raise SystemExit(f"hearth: {exc}") from None
    if settings.auth == "any" and not is_loopback(settings.host):
        raise SystemExit("hearth: --auth any is only allowed when bound to a loopback address")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hearth = Hearth(settings)
    config = uvicorn.Config(
        HearthApp(hearth),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level="warning" if settings.log_level == "info" else settings.log_level,
        access_log=False,
        loop="uvloop" if sys.platform == "linux" else "asyncio",
        # HTTP/2 beside HTTP/1.1 (hearth.http2): a connection that opens with the HTTP/2 preface, asks for
        # `Upgrade: h2c` or picks h2 by ALPN is served by h2; every other one by uvicorn's httptools protocol.
        http=HttpProtocol,
        ws="wsproto",  # WebSocket APIs (uvicorn's sans-io wsproto implementation)
        timeout_graceful_shutdown=10,
        server_header=False,
        date_header=True,
    )
    companion = None
    if settings.https_port is not None:
        # The same app over HTTPS (requests there have aws:SecureTransport true), with a local CA's certificate.
        tls = ensure_tls(settings.data_dir, default_hosts(settings.host))
        companion = _Companion(uvicorn.Config(
            HearthApp(hearth), host=settings.host, port=settings.https_port, lifespan="off",
            log_level=config.log_level, access_log=False, loop=config.loop, http=HttpProtocol, ws="wsproto",
            timeout_graceful_shutdown=10, server_header=False, date_header=True,
            ssl_certfile=str(tls.server_cert), ssl_keyfile=str(tls.server_key)))
    server = _Server(config, on_shutdown=hearth.begin_shutdown, companion=companion)
    server.run()


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT that ended in a graceful shutdown exits 0.

    uvicorn re-raises the captured signal after shutting down, so the process would die by it; for
    Hearth a completed graceful shutdown is a clean exit, and supervisors should see it as one.
    """

    def __init__(self, config: uvicorn.Config, *, on_shutdown: Callable[[], None],
                 companion: uvicorn.Server | None = None) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown  # runs before in-flight requests are awaited
        self.companion = companion  # the HTTPS listener: started and stopped with this one

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if self.companion is None:
            await super().serve(sockets)
            return
        task = asyncio.create_task(self.companion.serve())
        try:
            await super().serve(sockets)
        finally:
            self.companion.should_exit = True
            await task

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.on_shutdown()
        await super().shutdown(sockets)


class _Companion(uvicorn.Server):
    """A second listener of the same app (HTTPS): the main server owns the signals and the lifespan."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def env_command(s: Settings) -> str:
    """The `hearth env` command that exports this server's endpoint (its own port and address)."""
    words = ["hearth", "env", "--data-dir", shlex.quote(str(s.data_dir))]
    if s.host not in ("127.0.0.1", "0.0.0.0", "::"):
        words += ["--host", shlex.quote(s.host)]
    if s.port != DEFAULT_PORT:
        words += ["--port", str(s.port)]
    return " ".join(words)
