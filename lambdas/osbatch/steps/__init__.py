"""The workflow's steps: each is JobState -> JobState with every dependency injected."""
