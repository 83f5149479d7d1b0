// The AWS SDK for JavaScript v3 against every service Hearth serves (tests/integration/test_node_sdk.py):
// one or two representative calls each, from outside Hearth and from inside a Node.js function.
// The endpoint, credentials and region come from the environment (AWS_ENDPOINT_URL and friends), as a
// user's code would get them; `tag` keeps the names of an outside run and an inside run apart.
const sdk = (name) => require("@aws-sdk/client-" + name);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, probe) {
  for (let i = 0; i < 150; i++) {
    const got = await probe();
    if (got) return got;
    await sleep(200);
  }
  throw new Error("timed out waiting for " + what);
}

const tours = {  // in the order they run; each returns what the test checks
  async sts() {
    const c = new (sdk("sts").STSClient)({});
    return { account: (await c.send(new (sdk("sts").GetCallerIdentityCommand)({}))).Account };
  },
  async iam(tag) {
    const m = sdk("iam"), c = new m.IAMClient({});
    const trust = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow",
      Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }] });
    await c.send(new m.CreateRoleCommand({ RoleName: "tour-" + tag, AssumeRolePolicyDocument: trust }));
    return { arn: (await c.send(new m.GetRoleCommand({ RoleName: "tour-" + tag }))).Role.Arn };
  },
  async ssm(tag) {
    const m = sdk("ssm"), c = new m.SSMClient({});
    await c.send(new m.PutParameterCommand({ Name: "/tour/" + tag, Value: "v-" + tag, Type: "String" }));
    return { value: (await c.send(new m.GetParameterCommand({ Name: "/tour/" + tag }))).Parameter.Value };
  },
  async s3(tag) {
    const m = sdk("s3"), c = new m.S3Client({ forcePathStyle: true });
    await c.send(new m.CreateBucketCommand({ Bucket: "tour-" + tag }));
    await c.send(new m.PutObjectCommand({ Bucket: "tour-" + tag, Key: "k", Body: "body-" + tag }));
    const got = await c.send(new m.GetObjectCommand({ Bucket: "tour-" + tag, Key: "k" }));
    return { body: await got.Body.transformToString() };
  },
  async dynamodb(tag) {
    const m = sdk("dynamodb"), c = new m.DynamoDBClient({});
    const doc = require("@aws-sdk/lib-dynamodb").DynamoDBDocumentClient.from(c);
    const lib = require("@aws-sdk/lib-dynamodb");
    await c.send(new m.CreateTableCommand({ TableName: "tour-" + tag, BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }));
    await until("table", async () => (await c.send(new m.DescribeTableCommand({ TableName: "tour-" + tag })))
      .Table.TableStatus === "ACTIVE");
    await doc.send(new lib.PutCommand({ TableName: "tour-" + tag, Item: { pk: "a", n: 7 } }));
    return { item: (await doc.send(new lib.GetCommand({ TableName: "tour-" + tag, Key: { pk: "a" } }))).Item };
  },
  async sqs(tag) {
    const m = sdk("sqs"), c = new m.SQSClient({});
    // The SQS client sends to the queue URL's own host. Hearth's URLs name its port, which a sandbox
    // reaches as 127.0.0.1:4566 (the default port): off the default, rebase on the endpoint in use.
    const made = (await c.send(new m.CreateQueueCommand({ QueueName: "tour-" + tag }))).QueueUrl;
    const url = process.env.AWS_ENDPOINT_URL + new URL(made).pathname;
    await c.send(new m.SendMessageCommand({ QueueUrl: url, MessageBody: "m-" + tag }));
    const got = await c.send(new m.ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    return { body: got.Messages[0].Body };
  },
  async sns(tag) {
    const m = sdk("sns"), c = new m.SNSClient({});
    const arn = (await c.send(new m.CreateTopicCommand({ Name: "tour-" + tag }))).TopicArn;
    const id = (await c.send(new m.PublishCommand({ TopicArn: arn, Message: "hello" }))).MessageId;
    return { arn, published: Boolean(id) };
  },
  async kinesis(tag) {
    // Always HTTP/2: the client's request handler is NodeHttp2Handler, which has no HTTP/1.1 fallback.
    const m = sdk("kinesis"), c = new m.KinesisClient({});
    const name = "tour-" + tag;
    await c.send(new m.CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
    await until("stream", async () => (await c.send(new m.DescribeStreamSummaryCommand({ StreamName: name })))
      .StreamDescriptionSummary.StreamStatus === "ACTIVE");
    const put = await c.send(new m.PutRecordCommand({ StreamName: name, PartitionKey: "p",
      Data: Buffer.from("r-" + tag) }));
    const it = await c.send(new m.GetShardIteratorCommand({ StreamName: name, ShardId: put.ShardId,
      ShardIteratorType: "TRIM_HORIZON" }));
    const got = await c.send(new m.GetRecordsCommand({ ShardIterator: it.ShardIterator }));
    const handler = c.config.requestHandler;
    c.destroy();
    return { data: Buffer.from(got.Records[0].Data).toString(), handler: handler.constructor.name };
  },
  async eventbridge(tag) {
    const m = sdk("eventbridge"), c = new m.EventBridgeClient({});
    await c.send(new m.CreateEventBusCommand({ Name: "tour-" + tag }));
    const out = await c.send(new m.PutEventsCommand({ Entries: [{ EventBusName: "tour-" + tag,
      Source: "tour", DetailType: "t", Detail: "{}" }] }));
    return { failed: out.FailedEntryCount, id: Boolean(out.Entries[0].EventId) };
  },
  async logs(tag) {
    const m = sdk("cloudwatch-logs"), c = new m.CloudWatchLogsClient({});
    const group = "/tour/" + tag;
    await c.send(new m.CreateLogGroupCommand({ logGroupName: group }));
    await c.send(new m.CreateLogStreamCommand({ logGroupName: group, logStreamName: "s" }));
    await c.send(new m.PutLogEventsCommand({ logGroupName: group, logStreamName: "s",
      logEvents: [{ timestamp: Date.now(), message: "line-" + tag }] }));
    const got = await c.send(new m.GetLogEventsCommand({ logGroupName: group, logStreamName: "s" }));
    return { message: got.events[0].message };
  },
  async lambda(tag, fn) {
    const m = sdk("lambda"), c = new m.LambdaClient({});
    return { state: (await c.send(new m.GetFunctionCommand({ FunctionName: fn }))).Configuration.State };
  },
  async apigateway(tag) {
    const m = sdk("api-gateway"), c = new m.APIGatewayClient({});
    const id = (await c.send(new m.CreateRestApiCommand({ name: "tour-" + tag }))).id;
    const v2 = sdk("apigatewayv2"), c2 = new v2.ApiGatewayV2Client({});
    const http = (await c2.send(new v2.CreateApiCommand({ Name: "tour-" + tag, ProtocolType: "HTTP" }))).ApiId;
    return { rest: (await c.send(new m.GetRestApiCommand({ restApiId: id }))).name,
             http: (await c2.send(new v2.GetApiCommand({ ApiId: http }))).Name };
  },
  async cloudformation(tag) {
    const m = sdk("cloudformation"), c = new m.CloudFormationClient({});
    const template = JSON.stringify({ Resources: { P: { Type: "AWS::SSM::Parameter",
      Properties: { Name: "/tour/cfn-" + tag, Type: "String", Value: "from-cfn" } } } });
    await c.send(new m.CreateStackCommand({ StackName: "tour-" + tag, TemplateBody: template }));
    const status = await until("stack", async () => {
      const s = (await c.send(new m.DescribeStacksCommand({ StackName: "tour-" + tag }))).Stacks[0].StackStatus;
      return s.endsWith("_IN_PROGRESS") ? null : s;
    });
    return { status };
  },
};

// Every service, each failure reported under its name (so one broken client does not hide the others).
exports.tour = async (tag, fn, only) => {
  const out = {};
  for (const name of only || Object.keys(tours)) {
    try {
      out[name] = await tours[name](tag, fn);
    } catch (err) {
      out[name] = { error: `${err.name}: ${err.message}` };
    }
  }
  return out;
};

// Run as a script (outside Hearth): node node_sdk_tour.js TAG FUNCTION [SERVICE,...] prints the results.
if (require.main === module) {
  const [tag, fn, only] = process.argv.slice(2);
  exports.tour(tag, fn, only ? only.split(",") : undefined)
    .then((out) => process.stdout.write(JSON.stringify(out)));
}
