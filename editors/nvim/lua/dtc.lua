-- The dt language server for Neovim without lspconfig: starts `dtc lsp` for
-- every buffer of filetype `dt`.
--
--   require("dtc").setup()                      -- dtc on PATH
--   require("dtc").setup({ cmd = { "/path/to/dtc", "lsp" }, format_on_save = true })
local M = {}

function M.setup(opts)
  opts = opts or {}
  local cmd = opts.cmd or { "dtc", "lsp" }
  vim.filetype.add({ extension = { dt = "dt" } })
  local group = vim.api.nvim_create_augroup("dtc", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "dt",
    callback = function(args)
      local root = vim.fs.root(args.buf, { ".git" }) or vim.fs.dirname(vim.api.nvim_buf_get_name(args.buf))
      vim.lsp.start({ name = "dtc", cmd = cmd, root_dir = root }, { bufnr = args.buf })
      vim.bo[args.buf].commentstring = "// %s"
      if opts.format_on_save then
        vim.api.nvim_create_autocmd("BufWritePre", {
          group = group,
          buffer = args.buf,
          callback = function()
            vim.lsp.buf.format({ bufnr = args.buf, name = "dtc" })
          end,
        })
      end
    end,
  })
end

return M
