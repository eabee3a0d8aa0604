# E4: each tenant's served tokens over the compressed day, and the pooled fleet's utilization.
# Usage: gnuplot -e "dir='sim/results/e4/pooled'" sim/plot_e4.gp  -> $dir/demand.svg
# Columns of timeseries.csv: t_s, 10 x tokens, 10 x share, 10 x debt, replicas, utilization,
# queued (sim/report.h), 20 s samples.
set terminal svg size 1000,650 dynamic background rgb 'white' noenhanced
set output dir.'/demand.svg'
set datafile separator ','
set multiplot layout 2,1 title 'E4: ten tenants on one token-pooled fleet (20 s samples)'
set ylabel 'served tokens/s'
set key outside right
set grid
set xrange [0:1200]
name(s) = s[1:strlen(s) - 7]  # "us-chat_tokens" -> "us-chat"
plot for [i = 2:11] dir.'/timeseries.csv' using 1:(column(i) / 20) with lines lw 1.5 \
  title name(columnhead(i))
set ylabel 'utilization (busiest dimension)'
set xlabel 'virtual time (s)'
set yrange [0:1.05]
plot dir.'/timeseries.csv' using 1:33 with lines lw 2 title 'pooled fleet'
unset multiplot
