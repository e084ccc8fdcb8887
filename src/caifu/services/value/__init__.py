"""Value: CLV and efficiency, churn and propensity scores, fund redemptions, the value report and its API views."""
