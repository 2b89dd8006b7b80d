"""A fresh moto S3 server's IAM user, access key and bucket (deploy/local/up.sh).

moto authenticates every request after the first ``INITIAL_NO_AUTH_ACTION_COUNT``
(3): this script spends exactly those on creating a user, its policy and its key, then
creates the bucket as that user. Prints the key as ``NAME=value`` lines for up.sh.
"""
import json
import sys

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
anon = dict(endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="cdrexp")
iam.put_user_policy(UserName="cdrexp", PolicyName="cdrexp-all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="cdrexp")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
