{-# LANGUAGE ForeignFunctionInterface #-}
-- GHC's side of tools/ffi_bench.c: a safe and an unsafe call of an empty C
-- function, a callback ("wrapper") called from C inside a safe call, and an
-- in-call (a foreign export) from a pthread of C's own.  Built by
-- tools/peers/build.sh with ffi_peer.c; run it with +RTS -N1.
import Control.Monad (forM_)
import Data.Word (Word64)
import Foreign.Ptr (FunPtr, freeHaskellFunPtr)
import GHC.Clock (getMonotonicTimeNSec)
import System.Environment (getArgs)
import Text.Printf (printf)

foreign import ccall safe "peer_empty" emptySafe :: IO ()
foreign import ccall unsafe "peer_empty" emptyUnsafe :: IO ()
foreign import ccall safe "peer_call_many" callMany :: FunPtr (Int -> IO Int) -> Int -> IO Int
foreign import ccall "wrapper" mkCallback :: (Int -> IO Int) -> IO (FunPtr (Int -> IO Int))
foreign import ccall safe "peer_incall_many" incallMany :: Int -> IO ()
foreign export ccall peerEcho :: Int -> IO Int

peerEcho :: Int -> IO Int
peerEcho x = return x

timed :: String -> Int -> IO () -> IO ()
timed name n act = do
  t0 <- getMonotonicTimeNSec
  act
  t1 <- getMonotonicTimeNSec
  let ns = fromIntegral (t1 - t0) / fromIntegral n :: Double
  printf "%-26s %8.1f ns\n" name ns
  printf "BENCH {\"name\":\"ghc_%s\",\"ns\":%.1f}\n" name ns

main :: IO ()
main = do
  args <- getArgs
  let n = case args of (a:_) -> read a; _ -> 1000000
  timed "ffi_unsafe_call" n (forM_ [1..n] (const emptyUnsafe))
  timed "call_safe_fast" n (forM_ [1..n] (const emptySafe))
  cb <- mkCallback peerEcho
  timed "callback_in_safe_call" n (callMany cb n >>= \s -> if s == n then return () else error "sum")
  freeHaskellFunPtr cb
  let m = max 1 (n `div` 20)
  timed "incall_from_pthread" m (incallMany m)
  let _ = (0 :: Word64)
  return ()
