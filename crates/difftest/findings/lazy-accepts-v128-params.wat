;; Lazy compilation accepts this module, eager compilation reports it Unsupported.
(module
  (func (export "f") (result i32) (i32.const 1))
  (func (export "d") (param v128) (drop (local.get 0))))
