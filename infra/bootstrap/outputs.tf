output "state_bucket_name" {
  description = "Bucket named in the environments' backend \"s3\" blocks."
  value       = aws_s3_bucket.state.id
}

output "state_bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "lock_table_name" {
  description = "DynamoDB table named in the environments' backend \"s3\" blocks."
  value       = aws_dynamodb_table.locks.name
}
