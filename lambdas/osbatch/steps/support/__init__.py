"""What the workflow steps share and are not steps themselves: joining and diffing model output, the parts
and plans of a job, dead-lettering what a job will not index, the report, and the steps' ports."""
