-- Headless Neovim as a real LSP client of `dtc lsp`, through the config in
-- this folder: `nvim --headless -u NONE -l test/smoke.lua DTC SAMPLE`.
-- Opens the sample, waits for the server to attach and publish diagnostics,
-- asks for a hover and a formatting, and exits 0 when all went well.
local dtc, sample = arg[1], arg[2]
local here = vim.fs.dirname(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)))
vim.opt.runtimepath:prepend(here)
-- `-u NONE` leaves filetype detection off; a normal config has it on.
vim.cmd("filetype on")
require("dtc").setup({ cmd = { dtc, "lsp" } })

local function fail(msg)
  io.stderr:write("FAIL: " .. msg .. "\n")
  os.exit(1)
end

vim.cmd.edit(sample)
local buf = vim.api.nvim_get_current_buf()
if vim.bo[buf].filetype ~= "dt" then
  fail("filetype is " .. vim.bo[buf].filetype)
end
local attached = vim.wait(10000, function()
  return #vim.lsp.get_clients({ bufnr = buf, name = "dtc" }) > 0
end)
if not attached then
  fail("the server did not attach")
end
local published = false
vim.api.nvim_create_autocmd("DiagnosticChanged", {
  callback = function()
    published = true
  end,
})
vim.wait(10000, function()
  return published or #vim.diagnostic.get(buf) > 0
end)

-- Hover on the first `LogEndFileHash` after `redact`.
local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
local row, col
for i, l in ipairs(lines) do
  local c = l:find("redact LogEndFileHash", 1, true)
  if c then
    row, col = i - 1, c - 1 + #"redact "
    break
  end
end
if not row then
  fail("no redact rule in the sample")
end
local params = {
  textDocument = vim.lsp.util.make_text_document_params(buf),
  position = { line = row, character = col + 2 },
}
local result = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 10000) or {}
local text = ""
for _, r in pairs(result) do
  if r.result and r.result.contents then
    text = text .. (r.result.contents.value or "")
  end
end
if not text:find("event LogEndFileHash", 1, true) then
  fail("hover did not show the schema: " .. text)
end

local fmt = vim.lsp.buf_request_sync(buf, "textDocument/formatting", {
  textDocument = vim.lsp.util.make_text_document_params(buf),
  options = { tabSize = 4, insertSpaces = true },
}, 10000)
if not fmt then
  fail("no answer to formatting")
end

io.stdout:write("nvim: 1 passed, 0 failed\n")
vim.lsp.stop_client(vim.lsp.get_clients({ bufnr = buf }))
os.exit(0)
