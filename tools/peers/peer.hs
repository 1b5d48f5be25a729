-- The peers' side of tools/bench-instr.sh: the same figures as
-- tools/sched_bench.c, in GHC's threads.  usage: ghc-peer --size N figure
import Control.Concurrent
import Control.Monad
import System.Environment
import System.Exit

ringSize :: Int
ringSize = 503

main :: IO ()
main = do
  args <- getArgs
  case args of
    ["--size", n, fig] -> run fig (read n)
    _ -> die "usage: ghc-peer --size N yield|spawn|ring|pingpong"

run :: String -> Int -> IO ()
-- two threads, n yields each
run "yield" n = do
  done <- newEmptyMVar
  replicateM_ 2 $ forkIO (replicateM_ n yield >> putMVar done ())
  replicateM_ 2 (takeMVar done)
-- n threads that do nothing, a yield after every 1000 so each batch runs
run "spawn" n =
  forM_ [1 .. n] $ \i -> do
    _ <- forkIO (return ())
    when (i `mod` 1000 == 0) yield
-- 503 threads pass a token n hops through MVars
run "ring" n = do
  boxes <- replicateM ringSize newEmptyMVar
  done <- newEmptyMVar
  forM_ [0 .. ringSize - 1] $ \i ->
    forkIO (member (boxes !! i) (boxes !! ((i + 1) `mod` ringSize)) done)
  putMVar (head boxes) n
  takeMVar done
  where
    member from to done = do
      v <- takeMVar from
      if v == 0 then putMVar done () else putMVar to (v - 1) >> member from to done
-- two threads, two MVars, n round trips
run "pingpong" n = do
  ping <- newEmptyMVar
  pong <- newEmptyMVar
  _ <- forkIO (replicateM_ n (takeMVar ping >>= putMVar pong))
  forM_ [1 .. n] $ \i -> putMVar ping i >> takeMVar pong
run fig _ = die ("ghc-peer: no figure " ++ fig)
