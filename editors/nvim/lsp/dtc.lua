-- The dt language server, for Neovim 0.11's vim.lsp.config / vim.lsp.enable:
--   vim.lsp.enable("dtc")
return {
  cmd = { "dtc", "lsp" },
  filetypes = { "dt" },
  root_markers = { ".git" },
}
