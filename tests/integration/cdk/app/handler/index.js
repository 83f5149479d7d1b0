// Records each request in the table, the bucket and the queue the stack made, with the SDK the
// runtime bundles, and answers what it stored.
const { DynamoDBClient, PutItemCommand } = require('@aws-sdk/client-dynamodb');
const { S3Client, PutObjectCommand } = require('@aws-sdk/client-s3');
const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');

const dynamodb = new DynamoDBClient({});
const s3 = new S3Client({});
// Hearth's queue URLs name its address as the host sees it (http://127.0.0.1:<port>/…), which a
// function's sandbox does not reach; the SDK then must send to its endpoint (AWS_ENDPOINT_URL) rather
// than to the queue URL's host, as with any endpoint other than AWS's own.
const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });

exports.handler = async (event) => {
  const id = (event.queryStringParameters && event.queryStringParameters.id) || 'none';
  const body = JSON.stringify({ id, path: event.path, release: process.env.RELEASE });
  await dynamodb.send(new PutItemCommand({ TableName: process.env.TABLE, Item: { id: { S: id } } }));
  await s3.send(new PutObjectCommand({ Bucket: process.env.BUCKET, Key: `requests/${id}.json`, Body: body }));
  await sqs.send(new SendMessageCommand({ QueueUrl: process.env.QUEUE, MessageBody: body }));
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body };
};
