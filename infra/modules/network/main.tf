# The default VPC (no NAT gateway to pay for) and the security group of the compute service.
# The group starts with no rules: the aurora and valkey modules each add the one egress rule
# that reaches them, so the compute service can open nothing but 5432 and 6379.
data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

resource "aws_security_group" "app" {
  #checkov:skip=CKV2_AWS_5:Attached by the compute module the environment selects (App Runner VPC connector or ECS Express tasks)
  name        = "${var.name}-apprunner-sg"
  description = "Cerberus compute (App Runner VPC connector or ECS Express tasks): egress to Aurora and Valkey only"
  vpc_id      = data.aws_vpc.default.id

  tags = {
    Name = "${var.name}-apprunner-sg"
  }
}
