"""S3 object store on boto3."""
