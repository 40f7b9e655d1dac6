"""Reports for supervisors: the daily bulletin (一日一通报) and weekly, biweekly and monthly
reports of faults, SLA compliance, availability, recording coverage and upload completeness."""
