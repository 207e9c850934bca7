output "budget_name" {
  description = "Name of the budget."
  value       = aws_budgets_budget.main.name
}

output "limit_usd" {
  description = "Monthly limit in US dollars."
  value       = var.limit_usd
}
