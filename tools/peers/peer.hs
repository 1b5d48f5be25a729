-- The peers' side of tools/bench-instr.sh and tools/threads.sh: the same
-- figures as tools/sched_bench.c and tools/threads.c, in GHC's threads.
-- usage: ghc-peer --size N figure
import Control.Concurrent
import Control.Monad
import Data.IORef
import System.Environment
import System.Exit

ringSize :: Int
ringSize = 503

main :: IO ()
main = do
  args <- getArgs
  case args of
    ["--size", n, fig] -> run fig (read n)
    _ -> die "usage: ghc-peer --size N yield|spawn|ring|pingpong|blocked|spawnall"

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
-- tools/threads.c's: each waits at a gate of its own, then all report
run "blocked" n = do
  gates <- replicateM n newEmptyMVar
  done <- newEmptyMVar
  forM_ gates $ \g -> forkIO (takeMVar g >> putMVar done ())
  yield
  forM_ gates $ \g -> putMVar g ()
  replicateM_ n (takeMVar done)
-- tools/threads.c's spawn: each decrements a counter, the first waits for the last
run "spawnall" n = do
  left <- newIORef n
  done <- newEmptyMVar
  replicateM_ n $ forkIO $ do
    r <- atomicModifyIORef' left (\x -> (x - 1, x - 1))
    when (r == 0) (putMVar done ())
  takeMVar done
run fig _ = die ("ghc-peer: no figure " ++ fig)
