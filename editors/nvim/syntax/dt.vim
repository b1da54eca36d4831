" Vim syntax for Dynamic Telemetry (.dt) programs, for highlighting before
" the language server's semantic tokens arrive.
if exists("b:current_syntax")
  finish
endif

syn keyword dtDeclaration import from event probe query machine processor fn state
syn keyword dtKeyword on in when after var let if else for return trigger is max per
syn keyword dtShaping suppress redact with sample limit
syn keyword dtStage where extend project summarize by every emit log metric
syn keyword dtConstant true false none
syn keyword dtType bool int float string bytes duration timestamp percent dyn map histogram
syn match dtAnnotation "@[A-Za-z_][A-Za-z0-9_]*"
syn match dtNumber "\<[0-9][0-9_]*\(\.[0-9][0-9_]*\)\=\(ns\|us\|ms\|s\|m\|h\|d\|B\|KB\|KiB\|MB\|MiB\|GB\|GiB\|TB\|TiB\|%\)\="
syn match dtEscape contained "\\\([nrt0\\\"]\|u{[0-9A-Fa-f]\+}\)"
syn region dtString start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+ contains=dtEscape
syn match dtOperator "->\|??\|==\|!=\|<=\|>=\|&&\|||\|+=\|-=\|\.\.\||"
syn match dtDocComment "///.*$"
syn match dtComment "//[^/].*$\|//$"
syn region dtBlockComment start="/\*" end="\*/"

hi def link dtDeclaration Structure
hi def link dtKeyword Keyword
hi def link dtShaping Statement
hi def link dtStage Statement
hi def link dtConstant Constant
hi def link dtType Type
hi def link dtAnnotation PreProc
hi def link dtNumber Number
hi def link dtString String
hi def link dtEscape SpecialChar
hi def link dtOperator Operator
hi def link dtDocComment SpecialComment
hi def link dtComment Comment
hi def link dtBlockComment Comment

let b:current_syntax = "dt"
