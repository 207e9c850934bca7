# Production environment of Cerberus. The values of docs/deployment.md's "Staging vs Production
# Settings" and "Environment Variables Reference" tables are written here as literals, so that
# tests/infra checks them against the tables.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Created once by infra/bootstrap (infra/scripts/bootstrap.sh).
  backend "s3" {
    bucket         = "cerberus-mcp-terraform-state"
    key            = "prod/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "cerberus-terraform-locks"
    encrypt        = true
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "cerberus"
      Environment = "prod"
      ManagedBy   = "terraform"
    }
  }
}

locals {
  name           = "cerberus-prod"
  container_port = 8000

  # App Runner (or ECS Express) size and scaling.
  compute_size = {
    cpu             = "512"
    memory          = "1024"
    min_instances   = 1
    max_instances   = 5
    max_concurrency = 100
  }

  # Environment variables of the container, except DATABASE_URL, REDIS_URL and SECRET_KEY,
  # which the compute module adds from sensitive values.
  app_environment = {
    APP_NAME                      = "cerberus"
    APP_ENV                       = "production"
    DEBUG                         = "false"
    LOG_LEVEL                     = "WARNING"
    DATABASE_POOL_SIZE            = "20"
    DATABASE_MAX_OVERFLOW         = "10"
    RUN_MIGRATIONS_ON_STARTUP     = "true"
    REDIS_POOL_SIZE               = "10"
    ACCESS_TOKEN_EXPIRE_MINUTES   = "30"
    REFRESH_TOKEN_EXPIRE_DAYS     = "7"
    API_KEY_PREFIX                = "sk-"
    CORS_ORIGINS                  = var.cors_origins
    ALLOWED_ORIGINS               = var.allowed_origins
    MCP_REQUEST_TIMEOUT_SECONDS   = "30.0"
    MCP_MAX_RETRIES               = "3"
    MCP_MAX_KEEPALIVE_CONNECTIONS = "50"
    MCP_MAX_CONNECTIONS           = "200"
    MCP_STREAM_MAX_SECONDS        = "110"
    TRUSTED_PROXY_HOPS            = "1"
    HOST                          = "0.0.0.0"
    PORT                          = "8000"
    WORKERS                       = "1"
  }
}

module "network" {
  source = "../../modules/network"

  name = local.name
}

module "ecr" {
  source = "../../modules/ecr"

  name                = local.name
  force_delete        = true
  max_image_count     = 30
  untagged_image_days = 7
}

module "aurora" {
  source = "../../modules/aurora"

  name                     = local.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.subnet_ids
  app_security_group_id    = module.network.app_security_group_id
  engine_version           = "16.6"
  database_name            = "cerberus"
  master_username          = var.db_username
  master_password          = var.db_password
  min_capacity             = 0.5
  max_capacity             = 8
  seconds_until_auto_pause = 3600 # 1 hour
  backup_retention_period  = 7
  deletion_protection      = true
  skip_final_snapshot      = false
}

module "valkey" {
  source = "../../modules/valkey"

  name                     = local.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.subnet_ids
  app_security_group_id    = module.network.app_security_group_id
  node_type                = "cache.t4g.small"
  engine_version           = "8.0"
  parameter_group_name     = "default.valkey8"
  snapshot_retention_limit = 1
}

module "apprunner" {
  source = "../../modules/apprunner"
  count  = var.compute == "apprunner" ? 1 : 0

  name                 = local.name
  subnet_ids           = module.network.subnet_ids
  security_group_id    = module.network.app_security_group_id
  image_repository_url = module.ecr.repository_url
  image_tag            = var.image_tag
  container_port       = local.container_port
  cpu                  = local.compute_size.cpu
  memory               = local.compute_size.memory
  min_instances        = local.compute_size.min_instances
  max_instances        = local.compute_size.max_instances
  max_concurrency      = local.compute_size.max_concurrency
  environment          = local.app_environment
  database_url         = module.aurora.database_url
  redis_url            = module.valkey.redis_url
  secret_key           = var.secret_key
}

module "ecs_express" {
  source = "../../modules/ecs_express"
  count  = var.compute == "ecs_express" ? 1 : 0

  name                 = local.name
  subnet_ids           = module.network.subnet_ids
  security_group_id    = module.network.app_security_group_id
  image_repository_url = module.ecr.repository_url
  image_tag            = var.image_tag
  container_port       = local.container_port
  cpu                  = local.compute_size.cpu
  memory               = local.compute_size.memory
  min_instances        = local.compute_size.min_instances
  max_instances        = local.compute_size.max_instances
  cpu_target_percent   = 70
  environment          = local.app_environment
  database_url         = module.aurora.database_url
  redis_url            = module.valkey.redis_url
  secret_key           = var.secret_key
}

module "budget" {
  source = "../../modules/budget"

  name         = local.name
  limit_usd    = 25
  alert_emails = var.alert_emails
}
