# Aurora Serverless v2 PostgreSQL, encrypted, reachable only from the compute security group.
resource "aws_db_subnet_group" "main" {
  name       = "${var.name}-aurora"
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "aurora" {
  name        = "${var.name}-aurora-sg"
  description = "Aurora PostgreSQL: port 5432 from the Cerberus compute security group only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-aurora-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "aurora_from_app" {
  security_group_id            = aws_security_group.aurora.id
  description                  = "PostgreSQL from Cerberus"
  referenced_security_group_id = var.app_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "app_to_aurora" {
  security_group_id            = var.app_security_group_id
  description                  = "Cerberus to Aurora PostgreSQL"
  referenced_security_group_id = aws_security_group.aurora.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_rds_cluster" "main" {
  #checkov:skip=CKV_AWS_327:Encrypted with the AWS-managed RDS key as the deployment guide says; a customer key costs more and adds nothing here
  #checkov:skip=CKV2_AWS_8:Aurora's own continuous backups (backup_retention_period) and pre-deploy snapshots are the backup plan
  #checkov:skip=CKV2_AWS_27:Statement logging would copy prompts and tool arguments (possible PII) into CloudWatch
  #checkov:skip=CKV_AWS_139:Deletion protection is per environment (off in staging, on in production) through var.deletion_protection
  cluster_identifier                  = "${var.name}-aurora-cluster"
  engine                              = "aurora-postgresql"
  engine_mode                         = "provisioned"
  engine_version                      = var.engine_version
  database_name                       = var.database_name
  master_username                     = var.master_username
  master_password                     = var.master_password
  port                                = 5432
  db_subnet_group_name                = aws_db_subnet_group.main.name
  vpc_security_group_ids              = [aws_security_group.aurora.id]
  storage_encrypted                   = true
  iam_database_authentication_enabled = true
  copy_tags_to_snapshot               = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  backup_retention_period             = var.backup_retention_period
  preferred_backup_window             = "03:00-04:00"
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = var.skip_final_snapshot
  final_snapshot_identifier           = var.skip_final_snapshot ? null : "${var.name}-aurora-final"
  apply_immediately                   = true

  # min_capacity 0 lets the cluster pause after seconds_until_auto_pause without connections.
  # Above 0 ACU, AWS drops the setting (and would show a diff on every plan), so send none.
  serverlessv2_scaling_configuration {
    min_capacity             = var.min_capacity
    max_capacity             = var.max_capacity
    seconds_until_auto_pause = var.min_capacity == 0 ? var.seconds_until_auto_pause : null
  }
}

resource "aws_rds_cluster_instance" "main" {
  #checkov:skip=CKV_AWS_354:Performance Insights data is encrypted with the AWS-managed key, like the cluster itself
  #checkov:skip=CKV_AWS_118:Enhanced monitoring is billed per instance; CloudWatch metrics and Performance Insights cover the guide's metrics
  identifier                   = "${var.name}-aurora-instance"
  cluster_identifier           = aws_rds_cluster.main.id
  engine                       = aws_rds_cluster.main.engine
  engine_version               = aws_rds_cluster.main.engine_version
  instance_class               = "db.serverless"
  db_subnet_group_name         = aws_db_subnet_group.main.name
  publicly_accessible          = false
  auto_minor_version_upgrade   = true
  performance_insights_enabled = true
  apply_immediately            = true
}
