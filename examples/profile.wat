;; A small program to try profilers on: `main` spends its time in two named functions.
;;   perf record -- wjit run --profile perfmap examples/profile.wat --invoke main 36
;;   perf report
(module
  ;; Recursive Fibonacci: a call-heavy function.
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  ;; A multiply-add loop: a loop-heavy function.
  (func $mix (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc))
  ;; fib(n) plus 2^(n-9) rounds of mixing.
  (func $main (export "main") (param $n i32) (result i32)
    (i32.add
      (call $fib (local.get $n))
      (call $mix (i32.shl (i32.const 1) (i32.sub (local.get $n) (i32.const 9)))))))
