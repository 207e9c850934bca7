# ECS Express Mode service: the compute alternative for accounts that cannot use App Runner
# (closed to new customers since 30 April 2026). Same image, same environment, same security
# group, so it reaches Aurora and Valkey through the same rules.
data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "infrastructure_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs.amazonaws.com"]
    }
  }
}

# Pulls the image from ECR and writes logs, nothing else.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# Lets ECS create the load balancer, certificate and scaling policy of the Express service.
resource "aws_iam_role" "infrastructure" {
  name               = "${var.name}-ecs-infrastructure"
  assume_role_policy = data.aws_iam_policy_document.infrastructure_assume.json
}

resource "aws_iam_role_policy_attachment" "infrastructure" {
  role       = aws_iam_role.infrastructure.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
}

resource "aws_cloudwatch_log_group" "main" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted with the CloudWatch-managed key; Cerberus never logs secrets
  #checkov:skip=CKV_AWS_338:30 days matches App Runner's default retention; audit data lives in PostgreSQL
  name              = "/aws/ecs/${var.name}-service"
  retention_in_days = 30
}

# Unlike App Runner, Fargate tasks pull their image and ship logs through their own network
# interface, so they also need HTTPS out (ECR, CloudWatch Logs).
resource "aws_vpc_security_group_egress_rule" "app_https" {
  #checkov:skip=CKV_AWS_382:ECR and CloudWatch endpoints have no fixed addresses; only port 443 is open
  security_group_id = var.security_group_id
  description       = "ECS tasks to ECR and CloudWatch Logs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_ecs_express_gateway_service" "main" {
  service_name            = "${var.name}-service"
  execution_role_arn      = aws_iam_role.execution.arn
  infrastructure_role_arn = aws_iam_role.infrastructure.arn
  cpu                     = var.cpu
  memory                  = var.memory
  health_check_path       = "/health"
  wait_for_steady_state   = true

  network_configuration {
    subnets         = var.subnet_ids
    security_groups = [var.security_group_id]
  }

  primary_container {
    image          = "${var.image_repository_url}:${var.image_tag}"
    container_port = var.container_port

    aws_logs_configuration {
      log_group         = aws_cloudwatch_log_group.main.name
      log_stream_prefix = "cerberus"
    }

    dynamic "environment" {
      for_each = var.environment
      content {
        name  = environment.key
        value = environment.value
      }
    }

    environment {
      name  = "DATABASE_URL"
      value = var.database_url
    }

    environment {
      name  = "REDIS_URL"
      value = var.redis_url
    }

    environment {
      name  = "SECRET_KEY"
      value = var.secret_key
    }
  }

  scaling_target {
    min_task_count            = var.min_instances
    max_task_count            = var.max_instances
    auto_scaling_metric       = "AVERAGE_CPU"
    auto_scaling_target_value = var.cpu_target_percent
  }

  depends_on = [
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy_attachment.infrastructure,
  ]
}
