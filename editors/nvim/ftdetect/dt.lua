-- .dt files are Dynamic Telemetry programs.
vim.filetype.add({ extension = { dt = "dt" } })
