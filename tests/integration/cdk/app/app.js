// The app `cdk init app --language javascript` gives, plus what a first service adds: a function behind
// a REST API that writes to a table, a bucket and a queue. Deployed by tests/integration/test_cdk.py.
const path = require('path');
const cdk = require('aws-cdk-lib');
const apigateway = require('aws-cdk-lib/aws-apigateway');
const dynamodb = require('aws-cdk-lib/aws-dynamodb');
const lambda = require('aws-cdk-lib/aws-lambda');
const s3 = require('aws-cdk-lib/aws-s3');
const sqs = require('aws-cdk-lib/aws-sqs');

class HearthCdkStack extends cdk.Stack {
  constructor(scope, id, props) {
    super(scope, id, props);
    const table = new dynamodb.Table(this, 'Items', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    // autoDeleteObjects: CDK's own custom resource (a Node.js function answering with cfn-response over
    // https.request without the URL's port) empties the bucket at `cdk destroy`.
    const bucket = new s3.Bucket(this, 'Uploads', {
      removalPolicy: cdk.RemovalPolicy.DESTROY, autoDeleteObjects: true,
    });
    const queue = new sqs.Queue(this, 'Jobs', { visibilityTimeout: cdk.Duration.seconds(30) });
    const fn = new lambda.Function(this, 'Handler', {
      runtime: lambda.Runtime.NODEJS_20_X,
      code: lambda.Code.fromAsset(path.join(__dirname, 'handler')),
      handler: 'index.handler',
      environment: {
        TABLE: table.tableName, BUCKET: bucket.bucketName, QUEUE: queue.queueUrl,
        RELEASE: this.node.tryGetContext('release') || 'first',
      },
    });
    table.grantReadWriteData(fn);
    bucket.grantReadWrite(fn);
    queue.grantSendMessages(fn);
    const api = new apigateway.LambdaRestApi(this, 'Api', { handler: fn });
    new cdk.CfnOutput(this, 'ApiId', { value: api.restApiId });
    new cdk.CfnOutput(this, 'ApiUrl', { value: api.url });
    new cdk.CfnOutput(this, 'TableName', { value: table.tableName });
    new cdk.CfnOutput(this, 'BucketName', { value: bucket.bucketName });
    new cdk.CfnOutput(this, 'QueueUrl', { value: queue.queueUrl });
  }
}

const app = new cdk.App();
new HearthCdkStack(app, process.env.HEARTH_CDK_STACK || 'HearthCdkApp');
