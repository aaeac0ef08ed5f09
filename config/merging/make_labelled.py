"""Write config/merging/labelled.jsonl: hand-written citizen reports grouped into problems.

Every text below was written by hand for this set (issue 15); the script only numbers the
reports, turns (day, hour, minute) into minutes from the set's start and sorts by time. A
cluster is one problem: the reports that should end in one case. Keys name the problem; a key
ending in `_again` is the same problem reported after its window had passed (a new case).

Run `python config/merging/make_labelled.py` after editing; commit both files.
"""

# ruff: noqa: E501  (the hand-written reports stay whole, one per line, to be read as texts)

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "labelled.jsonl"
LOCALES = {"zh": "zh-CN", "en": "en-US", "ko": "ko-KR"}

Row = tuple  # (day, hour, minute, locale, text) or (..., (lat, long))

# Web-form points near the old town (鲁城街道) and a village of 时庄街道; 0.001° lat ≈ 111 m.
GATE = (35.5968, 116.9861)
GATE_NEAR = (35.5972, 116.9866)  # ~60 m from GATE
GATE_NEAR2 = (35.5964, 116.9858)  # ~50 m
GATE_FAR = (35.6024, 116.9861)  # ~620 m north
MARKET = (35.5812, 116.9977)
MARKET_NEAR = (35.5817, 116.9971)  # ~75 m
MARKET_NEAR2 = (35.5808, 116.9983)  # ~70 m
LANE = (35.5899, 116.9795)
LANE_NEAR = (35.5902, 116.9799)  # ~50 m
LANE_FAR = (35.5899, 116.9865)  # ~630 m east

CLUSTERS: dict[str, list[Row]] = {
    # ---- street lights ---------------------------------------------------------------------
    "light_gulou": [
        (0, 20, 5, "zh", "鲁城街道鼓楼大街北段有两盏路灯不亮了，晚上走路看不清"),
        (
            0,
            21,
            10,
            "en",
            "Hi, the street lights on Gulou Street near the north end are out. It's pitch dark at night.",
        ),
        (0, 22, 40, "zh", "鼓楼大街那边路灯坏了 黑灯瞎火的 老人出门不方便"),
        (1, 19, 30, "ko", "고루대가 북쪽 가로등이 안 켜져요. 밤에 너무 어두워요."),
        (1, 20, 15, "zh", "我再反映一下鼓楼街北头的路灯，到现在还是不亮"),
        (1, 23, 0, "zh", "鼓楼大街北边 路灯 不 亮 已经 两天 了"),
    ],
    "light_jingxuan": [
        (0, 19, 50, "zh", "静轩路上靠近邮政那一段路灯全灭了"),
        (0, 20, 30, "zh", "鲁城这边静轩路的路灯晚上不亮，能不能派人修一下"),
        (
            1,
            6,
            10,
            "en",
            "Reporting a dark stretch on Jingxuan Road, several street lamps not working last night.",
        ),
        (1, 21, 0, "zh", "静轩路路灯还是黑的，昨天就打过电话了"),
    ],
    "light_chunqiu": [
        (0, 22, 0, "zh", "春秋路上有个路灯一闪一闪的，晃得人眼花"),
        (1, 0, 20, "zh", "春秋路那个路灯老是闪，开车很难受"),
        (2, 20, 45, "ko", "춘추로 가로등 하나가 계속 깜빡거려요."),
    ],
    "light_wucun": [
        (1, 19, 0, "zh", "吴村镇前店村村口的路灯不亮了"),
        (1, 20, 5, "zh", "前店村路灯坏了好几天了，我们是吴村镇的"),
        (2, 18, 40, "zh", "吴村前店村那个村口路灯晚上还是不亮"),
    ],
    "light_jingxuan_again": [
        (7, 20, 0, "zh", "静轩路的路灯又不亮了，上个礼拜修好没几天"),
        (7, 21, 30, "zh", "静轩路一段路灯又坏了，晚上黑漆漆的"),
    ],
    "light_confucius_temple": [
        (2, 21, 0, "zh", "孔庙东边墙外的景观灯和路灯都不亮"),
        (
            2,
            21,
            40,
            "en",
            "The lights along the east wall of the Confucius Temple are all off tonight, tourists are walking in the dark.",
        ),
        (3, 20, 10, "ko", "공묘 동쪽 담장 옆 가로등이 안 들어와요."),
    ],
    "light_nishan": [
        (3, 19, 0, "zh", "尼山镇鲁源村大桥上的路灯不亮"),
        (3, 22, 10, "zh", "鲁源村桥上那几盏灯坏了，尼山镇的"),
    ],
    "light_no_place_a": [(2, 22, 30, "zh", "我家楼下的路灯坏了好几天了")],
    "light_no_place_b": [(3, 21, 15, "zh", "小区门口那盏路灯一直闪")],
    "light_lingcheng": [(4, 20, 0, "zh", "陵城镇政府门口那条路的路灯坏了两个")],
    "light_gulou_other_end": [
        (5, 20, 0, "zh", "鼓楼大街南头靠近孔庙那里路灯灯杆歪了，快倒了"),
    ],
    "light_youpeng": [
        (4, 21, 0, "zh", "有朋路路灯没亮，整条路都是黑的"),
        (4, 21, 35, "en", "All the street lights on Youpeng Road are off, the whole road is dark."),
        (4, 22, 5, "zh", "有朋路一路都黑着，路灯没开"),
        (5, 19, 50, "ko", "유펑로 가로등이 전부 꺼져 있어요."),
    ],
    # ---- roads and manhole covers ------------------------------------------------------------
    "manhole_jingxuan_dacheng": [
        (0, 8, 0, "zh", "静轩路和大成路交叉口有个井盖没了，很危险"),
        (0, 8, 25, "zh", "大成路路口井盖丢了，刚才差点有电动车掉进去"),
        (
            0,
            9,
            10,
            "en",
            "There's a missing manhole cover at the corner of Jingxuan Road and Dacheng Road.",
        ),
        (0, 10, 0, "zh", "静轩路大成路口那个井口敞着 没有盖子"),
        (0, 11, 30, "ko", "다청로 교차로에 맨홀 뚜껑이 없어요. 위험해요."),
        (0, 14, 0, "zh", "大成路口井盖还没盖上，谁来管管"),
    ],
    "pothole_chunqiu": [
        (1, 9, 0, "zh", "春秋路上有个大坑，下雨积水看不见"),
        (1, 10, 20, "zh", "春秋路路面坑坑洼洼，有个坑特别大"),
        (1, 17, 45, "en", "Big pothole on Chunqiu Road, my car tire got damaged this morning."),
        (2, 8, 30, "zh", "春秋路的那个大坑还没补"),
    ],
    "road_shizhuang": [
        (2, 9, 0, "zh", "时庄街道林家村村东头的水泥路塌了一块"),
        (2, 11, 0, "zh", "林家村东头路面塌陷，时庄的，车过不去"),
        (2, 15, 20, "zh", "时庄林家村那条路塌了个坑，请尽快处理"),
    ],
    "sidewalk_xingtan": [
        (3, 10, 0, "zh", "杏坛路人行道的地砖翘起来了好多块，容易绊倒"),
        (
            3,
            16,
            0,
            "en",
            "The paving stones on the Xingtan Road sidewalk are loose and sticking up, my mother tripped.",
        ),
    ],
    "manhole_dev_zone": [
        (4, 7, 30, "zh", "开发区工业园南门那个井盖碎了"),
        (
            4,
            8,
            10,
            "en",
            "Broken manhole cover by the south gate of the industrial park in the development zone.",
        ),
        (4, 9, 0, "zh", "经济开发区工业园南门口井盖裂了，大车一压就响"),
    ],
    "manhole_no_place": [(3, 13, 0, "zh", "楼下那个井盖一踩就晃")],
    "guardrail_dacheng": [(5, 10, 0, "zh", "大成路中间的护栏被撞倒了一段")],
    # ---- water ----------------------------------------------------------------------------------
    "water_wangzhuang": [
        (1, 7, 0, "zh", "王庄镇大吴村从昨天晚上就停水了"),
        (1, 7, 40, "zh", "大吴村没水了，王庄镇的，也没通知"),
        (1, 9, 15, "zh", "王庄大吴村自来水停了一整天了，做饭都没水"),
        (1, 12, 0, "zh", "我是王庄镇大吴村的，家里水龙头一滴水都没有"),
    ],
    "water_wangzhuang_again": [
        (5, 8, 0, "zh", "王庄镇大吴村又停水了"),
        (5, 10, 30, "zh", "大吴村又没水了，王庄镇，这个月第二次了"),
    ],
    "water_wumaci": [
        (2, 6, 30, "zh", "五马祠街路边水管爆了，水哗哗往外冒"),
        (2, 6, 50, "en", "A water main burst on Wumaci Street, water is flooding the road."),
        (2, 7, 20, "zh", "五马祠街自来水管破了，路上全是水"),
        (2, 8, 0, "ko", "우마츠거리에서 수도관이 터져서 물이 넘쳐요."),
    ],
    "water_louxiang": [
        (2, 18, 0, "zh", "陋巷街这几天水压很小，楼上接不上水"),
        (2, 20, 10, "zh", "陋巷街的自来水压力太低，三楼以上都没水"),
    ],
    "water_shuyuan": [
        (3, 7, 0, "zh", "书院街道杏林小区的自来水发黄，有股铁锈味"),
        (3, 8, 30, "zh", "杏林小区放出来的水是黄的，书院街道这边"),
        (3, 12, 0, "zh", "书院办事处杏林小区水质有问题，黄水"),
    ],
    "water_no_place": [(4, 9, 0, "zh", "我们家水表漏水了")],
    # ---- power ----------------------------------------------------------------------------------
    "power_yaocun": [
        (2, 14, 0, "zh", "姚村镇张庄村全村停电了"),
        (2, 14, 20, "zh", "张庄村没电了，姚村镇的，也没说为啥停"),
        (2, 15, 0, "zh", "姚村张庄停电好几个钟头了，冰箱里的东西都要坏了"),
        (2, 18, 30, "zh", "姚村镇张庄村到现在还没来电"),
    ],
    "power_youpeng": [
        (5, 14, 0, "zh", "有朋路两边的商铺都停电了"),
        (
            5,
            14,
            30,
            "en",
            "Power outage on Youpeng Road, all the shops on our block lost electricity.",
        ),
        (5, 15, 10, "zh", "有朋路这一片没电了，啥时候来电"),
    ],
    "power_xizou": [
        (6, 9, 0, "zh", "息陬镇春亭村停电了"),
        (6, 10, 0, "zh", "息邹春亭村一直没来电"),
    ],
    "power_pole_jingxuan": [(6, 11, 0, "zh", "静轩路边一根电线杆上的电线耷拉下来了，低得碰头")],
    # ---- sanitation -----------------------------------------------------------------------------
    "rubbish_liaohe": [
        (1, 8, 0, "zh", "蓼河公园北门那儿垃圾堆成山了，没人清"),
        (
            1,
            9,
            30,
            "en",
            "Lots of trash piling up at the north entrance of Liaohe Park, it smells.",
        ),
        (1, 11, 0, "zh", "蓼河公园门口垃圾桶满了，垃圾扔了一地"),
        (1, 16, 0, "ko", "랴오허공원 북문 쪽에 쓰레기가 쌓여 있어요."),
        (2, 9, 0, "zh", "蓼河公园北门的垃圾还是没人收"),
    ],
    "toilet_liaohe": [(2, 10, 0, "zh", "蓼河公园里面的公厕堵了，进不去人")],
    "toilet_confucius_temple": [
        (3, 9, 0, "zh", "孔庙旁边的公共厕所太脏了，游客都在抱怨"),
        (
            3,
            10,
            30,
            "en",
            "The public toilet next to the Confucius Temple is filthy and has no water.",
        ),
        (3, 13, 0, "ko", "공묘 옆 공중화장실이 너무 더러워요."),
    ],
    "rubbish_xiaoxue": [
        (4, 8, 0, "zh", "小雪街道武家村村西的垃圾点好几天没人拉了"),
        (4, 10, 0, "zh", "武家村西边垃圾堆都臭了，小雪办事处管不管"),
        (4, 15, 0, "zh", "小雪街道武家村垃圾没人清运"),
    ],
    "rubbish_east_station": [
        (5, 9, 0, "zh", "曲阜东站出站口外面垃圾扔得到处都是"),
        (5, 12, 0, "en", "The area outside the exit of Qufu East Station is covered with litter."),
    ],
    "rubbish_no_place": [(5, 18, 0, "zh", "我们小区的垃圾桶好几天没人倒了")],
    # ---- illegal construction and stalls ---------------------------------------------------------
    "build_louxiang": [
        (1, 10, 0, "zh", "陋巷街有一户在院子里私自加盖二层，挡了邻居的光"),
        (2, 15, 0, "zh", "陋巷街那家还在盖房子，违建没人管吗"),
        (4, 11, 0, "zh", "我举报陋巷街的违章建筑，已经盖到二楼了"),
    ],
    "stalls_normal_university": [
        (0, 18, 0, "zh", "曲师大南门口晚上全是占道摆摊的，路都堵死了"),
        (
            1,
            18,
            30,
            "en",
            "Street vendors are blocking the road outside the south gate of Qufu Normal University every evening.",
        ),
        (2, 19, 0, "zh", "曲阜师范大学南门外小摊占道经营，车过不去"),
        (3, 18, 45, "ko", "곡부사범대 남문 앞에 노점상이 길을 막고 있어요."),
        (5, 19, 10, "zh", "曲师南门的流动摊贩还是占着路"),
    ],
    "build_fangshan": [
        (3, 11, 0, "zh", "防山镇周家庄有人在耕地上盖房子"),
        (5, 9, 0, "zh", "周家庄耕地上违建盖房，防山镇的，已经打地基了"),
    ],
    # ---- noise and pollution --------------------------------------------------------------------
    "noise_wanda": [
        (0, 23, 30, "zh", "万达广场工地半夜还在施工，吵得睡不着"),
        (
            1,
            0,
            10,
            "en",
            "The construction site at Wanda Plaza is still working after midnight, the noise is unbearable.",
        ),
        (1, 0, 40, "zh", "万达那边工地夜里打桩，太吵了"),
        (1, 23, 20, "ko", "완다 공사장이 밤늦게까지 공사해서 시끄러워요."),
        (2, 23, 50, "zh", "万达广场夜间施工又开始了，连着三天了"),
    ],
    "noise_dacheng_dancing": [
        (2, 20, 0, "zh", "大成路小广场跳广场舞音响开得太大了"),
        (3, 20, 10, "zh", "大成路广场舞天天放那么大声，孩子没法写作业"),
        (4, 20, 0, "zh", "又来反映大成路广场舞噪音的事"),
    ],
    "smell_shizhuang": [
        (3, 22, 0, "zh", "时庄街道那个化工厂晚上偷排，一股刺鼻的味道"),
        (4, 6, 30, "zh", "时庄化工厂的味道太冲了，熏得人头疼"),
        (4, 22, 40, "zh", "时庄街道化工厂又在排废气"),
    ],
    "noise_no_place_a": [(1, 21, 0, "zh", "楼上装修天天电钻，周末也不停")],
    "noise_no_place_b": [(2, 7, 0, "zh", "楼下饭店油烟直接往我家窗户里灌")],
    # ---- public order ---------------------------------------------------------------------------
    "touts_bus_station": [
        (1, 14, 0, "zh", "汽车站门口有人拉客，拽着行李不放"),
        (1, 15, 30, "en", "Touts at the bus station grabbed my suitcase and would not let go."),
        (1, 17, 0, "zh", "汽车站出站口黑车司机强行拉客"),
    ],
    "dogs_xingtan": [(4, 19, 0, "zh", "杏坛路上有人遛狗不拴绳，狗追着小孩跑")],
    # ---- wages ----------------------------------------------------------------------------------
    "wage_xinyuan_site": [
        (0, 10, 0, "zh", "开发区鑫源建筑工地拖欠我们农民工工资三个月了"),
        (1, 9, 0, "zh", "鑫源建筑的工地欠我们工钱，老板不接电话"),
        (2, 10, 30, "zh", "我也是鑫源建筑工地的，工资一直没发"),
        (3, 11, 0, "zh", "开发区鑫源工地欠薪，我们十几个工人都没拿到钱"),
        (5, 9, 30, "zh", "反映鑫源建筑公司拖欠工资的问题，还是没人管"),
        (8, 10, 0, "zh", "鑫源建筑工地的工资到现在也没给"),
    ],
    "wage_restaurant": [
        (2, 16, 0, "zh", "鲁城街道孔府家宴饭店欠我两个月工资不给"),
        (4, 16, 30, "zh", "孔府家宴饭店拖欠服务员工资，我们好几个人都没拿到"),
    ],
    "wage_single": [(3, 15, 0, "zh", "我在姚村镇一个养殖场干活，老板欠我四千块钱工钱")],
    # ---- consumer rights ------------------------------------------------------------------------
    "shop_confucius_mansion": [
        (1, 11, 0, "zh", "孔府门口那家卖纪念品的店宰客，一个扇子要三百"),
        (
            1,
            13,
            0,
            "en",
            "The souvenir shop right outside the Confucius Mansion overcharged us badly for a fan.",
        ),
        (2, 12, 0, "zh", "孔府旁边纪念品店漫天要价，明码标价一套收一套"),
    ],
    "shop_shuyuan_supermarket": [
        (3, 17, 0, "zh", "书院街道惠民超市卖过期的牛奶"),
        (4, 10, 0, "zh", "惠民超市货架上的面包都过期了，书院办事处附近那家"),
    ],
    # ---- transport ------------------------------------------------------------------------------
    "taxi_east_station": [
        (2, 13, 0, "zh", "曲阜东站的出租车不打表，开口就要五十"),
        (
            2,
            16,
            0,
            "en",
            "Taxis at Qufu East Station refuse to use the meter and ask for a fixed price.",
        ),
        (3, 13, 20, "zh", "高铁站出租车拒载还不打表"),
        (3, 18, 0, "ko", "취푸동역 택시가 미터기를 안 켜요."),
    ],
    "bus_k01": [
        (3, 7, 30, "zh", "K01路公交车早上等了四十分钟都没来"),
        (4, 7, 40, "zh", "K01路公交老是不按点，早上上班迟到"),
    ],
    # ---- education and healthcare ---------------------------------------------------------------
    "school_fees": [
        (2, 10, 0, "zh", "实验小学让家长交资料费，一个学生两百"),
        (3, 9, 30, "zh", "实验小学乱收费，说是资料费"),
        (4, 12, 0, "zh", "反映实验小学收资料费的事，这合理吗"),
    ],
    "hospital_queue": [
        (1, 8, 30, "zh", "人民医院挂号窗口就开一个，排队排了两个小时"),
        (
            1,
            10,
            0,
            "en",
            "Only one registration window open at the People's Hospital, we have waited two hours.",
        ),
        (2, 9, 0, "zh", "市医院挂号排长队，窗口太少"),
    ],
    # ---- web-form reports with points -----------------------------------------------------------
    "form_pothole_gate": [
        (2, 9, 0, "zh", "路中间一个大坑，电动车经过很危险", GATE),
        (
            2,
            12,
            0,
            "en",
            "Deep pothole in the middle of the lane, scooters swerve around it.",
            GATE_NEAR,
        ),
        (3, 8, 0, "zh", "这里路面有坑，请修补", GATE_NEAR2),
    ],
    "form_pothole_far": [(3, 9, 0, "zh", "路面有个坑，下雨全是水", GATE_FAR)],
    "form_rubbish_market": [
        (4, 7, 0, "zh", "菜市场后门垃圾没人清", MARKET),
        (4, 9, 0, "zh", "市场后面的垃圾堆发臭了", MARKET_NEAR),
        (4, 11, 0, "ko", "시장 뒷문에 쓰레기가 쌓여서 냄새가 나요.", MARKET_NEAR2),
    ],
    "form_light_lane": [
        (5, 20, 0, "zh", "巷子里的路灯坏了", LANE),
        (5, 22, 0, "en", "The street lamp in this alley is out.", LANE_NEAR),
    ],
    "form_light_lane_far": [(6, 20, 0, "zh", "这条巷子的路灯不亮", LANE_FAR)],
    # ---- personal matters: each reporter's own case ---------------------------------------------
    "hukou_a": [(1, 10, 0, "zh", "鲁城街道派出所办身份证要多久")],
    "hukou_b": [(1, 11, 0, "zh", "我在鲁城街道派出所补办身份证，一个月了还没拿到")],
    "hukou_c": [(2, 9, 0, "en", "How can I register my newborn's hukou in Lucheng?")],
    "assistance_a": [(2, 14, 0, "zh", "我家老人瘫痪在床，想申请低保，吴村镇找谁")],
    "assistance_b": [(2, 15, 0, "zh", "吴村镇低保申请需要什么材料")],
    "insurance_a": [(3, 10, 0, "zh", "我的养老金这个月没到账，我是时庄街道的")],
    "insurance_b": [(3, 11, 0, "zh", "时庄街道的，医保卡报销不了")],
    "consult_a": [(4, 10, 0, "zh", "请问曲阜的公积金怎么提取")],
    "consult_b": [(4, 10, 30, "ko", "외국인도 취푸에서 운전면허를 바꿀 수 있나요?")],
}

# Written after the weights in config/merging.toml were set on the clusters above: never tuned on.
HELDOUT: dict[str, list[Row]] = {
    "h_light_dacheng": [
        (9, 19, 30, "zh", "大成路东头路灯一到晚上就灭，整条街黑乎乎的"),
        (9, 20, 0, "zh", "反映一下大成路东段的路灯不亮"),
        (9, 21, 15, "en", "Street lights on the east part of Dacheng Road are not on tonight."),
        (9, 22, 0, "zh", "大成路东边那一片路灯全黑了"),
        (10, 20, 30, "ko", "다청로 동쪽 가로등이 밤에 안 켜져요."),
        (10, 21, 0, "zh", "大成路路灯还没修，昨天就报过"),
    ],
    "h_light_kuiquan": [
        (9, 20, 10, "zh", "逵泉路中间那几盏路灯不亮"),
        (10, 19, 40, "zh", "逵泉路路灯坏了，晚上骑车看不见路"),
        (10, 22, 30, "zh", "逵泉路的灯怎么还不亮"),
    ],
    "h_light_shimenshan": [
        (10, 19, 0, "zh", "石门山镇九仙山村路灯坏了一排"),
        (10, 20, 20, "zh", "九仙山村的路灯不亮了，石门山镇"),
        (11, 19, 10, "zh", "石门山九仙山村一排路灯还是坏的"),
    ],
    "h_pothole_hongdao": [
        (9, 8, 0, "zh", "弘道路公交站旁边路面塌了个坑"),
        (9, 9, 30, "zh", "弘道路有个坑，电动车摔了一个"),
        (
            9,
            11,
            0,
            "en",
            "There is a sunken hole in the road surface on Hongdao Road next to the bus stop.",
        ),
        (9, 15, 0, "zh", "弘道路公交站那个坑越来越大了"),
        (10, 8, 30, "zh", "弘道路路面的坑还没人修"),
    ],
    "h_manhole_youpeng": [
        (10, 7, 0, "zh", "有朋路上一个井盖被车压翻了"),
        (10, 7, 20, "zh", "有朋路井盖翻了，好危险，赶紧来人"),
        (10, 8, 0, "ko", "유펑로에 맨홀 뚜껑이 뒤집혀 있어요."),
        (10, 9, 10, "en", "A manhole cover on Youpeng Road has flipped over, cars are hitting it."),
    ],
    "h_road_lingcheng": [
        (11, 9, 0, "zh", "陵城镇安丘府村的村路被大车压坏了"),
        (11, 14, 0, "zh", "安丘府村那条路压得坑坑洼洼，陵城镇的"),
        (12, 10, 0, "zh", "陵城安丘府村道路损坏严重"),
    ],
    "h_water_shizhuang": [
        (9, 6, 0, "zh", "时庄街道东野村停水了"),
        (9, 6, 40, "zh", "东野村自来水没了，时庄的"),
        (9, 8, 0, "zh", "时庄东野村一早就没水，孩子上学都没法洗脸"),
        (9, 10, 0, "zh", "时庄街道东野村到现在还没来水"),
        (9, 13, 0, "zh", "我们东野村停水一上午了"),
    ],
    "h_water_confucius_mansion": [
        (11, 7, 0, "zh", "孔府西边的路上自来水管漏了，一直往外冒水"),
        (
            11,
            8,
            0,
            "en",
            "Water is leaking from a pipe on the street west of the Confucius Mansion.",
        ),
        (11, 9, 30, "zh", "孔府西侧水管漏水，地上一大滩水"),
    ],
    "h_power_fangshan": [
        (10, 15, 0, "zh", "防山镇南泉村停电了"),
        (10, 15, 30, "zh", "南泉村没电，防山镇的，什么时候来电"),
        (10, 16, 40, "zh", "防山南泉村断电两个小时了"),
        (10, 19, 0, "zh", "防山镇南泉村还是没电"),
    ],
    "h_power_normal_university": [
        (12, 20, 0, "zh", "曲师大家属院停电了"),
        (12, 20, 30, "en", "Power is out in the staff housing of Qufu Normal University."),
        (12, 21, 0, "zh", "曲阜师范大学家属院没电了"),
        (12, 21, 30, "ko", "곡부사범대 교직원 아파트에 정전됐어요."),
    ],
    "h_rubbish_dongmen": [
        (9, 8, 0, "zh", "东门大街路边垃圾桶满了好几天没人清"),
        (9, 12, 0, "zh", "东门大街垃圾溢出来了，臭得很"),
        (9, 16, 0, "en", "The bins on Dongmen Street are overflowing and nobody empties them."),
        (10, 9, 0, "zh", "东门大街的垃圾还没清"),
    ],
    "h_rubbish_ximen": [(9, 10, 0, "zh", "西门大街有人往路边倒建筑垃圾")],
    "h_toilet_nishan": [
        (11, 10, 0, "zh", "尼山圣境停车场的厕所没水，脏得没法用"),
        (
            11,
            12,
            0,
            "en",
            "The toilets at the Nishan Sacred Land car park have no water and are filthy.",
        ),
        (11, 15, 0, "ko", "니산성경 주차장 화장실에 물이 안 나오고 더러워요."),
        (12, 11, 0, "zh", "尼山圣境停车场公厕还是没水"),
    ],
    "h_build_wumaci": [
        (9, 10, 0, "zh", "五马祠街有家在楼顶搭彩钢房"),
        (10, 11, 0, "zh", "五马祠街楼顶违建彩钢房还在搭"),
        (12, 9, 0, "zh", "举报五马祠街楼顶违章搭建"),
    ],
    "h_stalls_bus_station": [
        (10, 17, 0, "zh", "汽车站门口小摊占道，出站的人都挤不过去"),
        (11, 17, 30, "zh", "汽车站出站口摆摊的太多，占了人行道"),
        (12, 18, 0, "en", "Vendors are blocking the sidewalk outside the bus station exit."),
    ],
    "h_noise_kuiquan_bar": [
        (9, 23, 0, "zh", "逵泉路那家酒吧天天半夜放音乐，吵死了"),
        (10, 23, 30, "zh", "逵泉路酒吧噪音扰民，一点多还在唱"),
        (11, 23, 10, "zh", "又是逵泉路酒吧，声音太大睡不着"),
        (11, 23, 40, "en", "The bar on Kuiquan Road plays loud music past midnight every night."),
    ],
    "h_smell_wangzhuang": [
        (10, 21, 0, "zh", "王庄镇有个养猪场臭气熏天，粪水直接排沟里"),
        (11, 8, 0, "zh", "王庄养猪场的粪水往沟里排，味道太大"),
        (12, 20, 0, "zh", "王庄镇养猪场还在排粪水"),
    ],
    "h_noise_no_place": [(10, 22, 0, "zh", "隔壁邻居养的狗天天晚上叫")],
    "h_order_wanda": [
        (11, 21, 0, "zh", "万达广场门口晚上有一群人喝酒闹事"),
        (11, 21, 40, "zh", "万达门口有人喝醉了打架闹事"),
    ],
    "h_wage_hotel": [
        (9, 10, 0, "zh", "鲁城街道阙里宾馆欠我们保洁工资三个月"),
        (10, 10, 0, "zh", "阙里宾馆拖欠保洁员的工资一直不给"),
        (12, 10, 0, "zh", "我也在阙里宾馆干保洁，工资也没发"),
        (13, 9, 0, "zh", "反映阙里宾馆欠薪问题"),
    ],
    "h_wage_factory": [
        (10, 14, 0, "zh", "开发区宏达纺织厂欠工人两个月工资"),
        (11, 9, 0, "zh", "宏达纺织厂拖欠工资，我们去要被赶出来了"),
        (12, 15, 0, "zh", "开发区宏达纺织欠薪，几十个工人"),
    ],
    "h_shop_wanda": [
        (10, 13, 0, "zh", "万达广场一家健身房收了年卡突然关门了"),
        (10, 15, 0, "zh", "万达那家健身房跑路了，会员卡钱退不了"),
        (
            11,
            10,
            0,
            "en",
            "The gym in Wanda Plaza closed suddenly after selling annual memberships.",
        ),
        (12, 12, 0, "zh", "万达广场健身房倒闭了，预付卡退不了钱"),
    ],
    "h_taxi_bus_station": [
        (11, 8, 0, "zh", "汽车站出租车拼客还加价"),
        (11, 13, 0, "zh", "汽车站门口的出租车乱要价，不打表"),
    ],
    "h_school_bus": [
        (9, 7, 30, "zh", "实验小学门口接送孩子的车乱停乱放，堵得水泄不通"),
        (10, 7, 40, "zh", "实验小学门口早上停车太乱了，孩子过马路危险"),
    ],
    "h_hospital_parking": [
        (12, 9, 0, "zh", "人民医院停车场乱收费，停半小时收二十"),
        (
            12,
            14,
            0,
            "en",
            "The People's Hospital car park charged me twenty yuan for half an hour.",
        ),
        (13, 10, 0, "zh", "市医院停车收费太贵了，也没有标价"),
    ],
    "h_form_light_square": [
        (9, 20, 0, "zh", "广场边上的路灯不亮", (35.5850, 116.9700)),
        (9, 21, 0, "zh", "这里路灯黑了", (35.5853, 116.9703)),
        (10, 20, 0, "en", "Street light out at the edge of the square.", (35.5848, 116.9698)),
    ],
    "h_form_light_square_far": [(10, 21, 0, "zh", "路灯坏了", (35.5850, 116.9780))],
    "h_form_rubbish_school": [
        (11, 8, 0, "zh", "学校后面的空地上垃圾成堆", (35.6010, 116.9920)),
        (11, 10, 0, "zh", "这片空地垃圾没人管", (35.6013, 116.9917)),
    ],
    "h_form_rubbish_far": [(11, 11, 0, "zh", "路边有垃圾没人清", (35.6060, 116.9920))],
    "h_hukou_a": [(9, 9, 0, "zh", "户口迁到曲阜需要什么手续")],
    "h_hukou_b": [(9, 10, 0, "zh", "我想把孩子户口落到鲁城街道，怎么办")],
    "h_assistance_a": [(10, 9, 0, "zh", "我是时庄街道的残疾人，想问问有没有补助")],
    "h_insurance_a": [(10, 11, 0, "zh", "城乡居民医保今年怎么交")],
    "h_insurance_b": [
        (10, 11, 30, "en", "How do I pay for my pension insurance as a foreign resident?")
    ],
    "h_consult_a": [(11, 9, 0, "zh", "曲阜的人才补贴怎么申请")],
    "h_consult_b": [(11, 9, 30, "zh", "请问办营业执照去哪个窗口")],
    "h_light_xingtan": [
        (12, 19, 30, "zh", "杏坛路北头路灯不亮，晚上散步的人多"),
        (12, 20, 10, "zh", "杏坛路北段的路灯全灭了"),
        (12, 21, 0, "en", "The street lights at the north end of Xingtan Road are all dark."),
        (13, 19, 40, "zh", "杏坛路北头路灯还是不亮"),
        (13, 20, 20, "ko", "싱탄로 북쪽 가로등이 다 꺼졌어요."),
    ],
    "h_light_xingtan_pole": [(13, 10, 0, "zh", "杏坛路南头有根路灯杆被车撞歪了")],
    "h_pothole_east_station": [
        (12, 8, 0, "zh", "高铁站送站的那段路坑很多，车颠得厉害"),
        (12, 9, 30, "zh", "曲阜东站进站路面坑坑洼洼"),
        (12, 14, 0, "en", "The access road to Qufu East Station is full of potholes."),
        (13, 8, 0, "zh", "高铁站进站路上的坑还是没补"),
    ],
    "h_water_xiaoxue": [
        (12, 6, 30, "zh", "小雪街道孔家村水管冻裂了，全村停水"),
        (12, 7, 0, "zh", "孔家村停水了，小雪办事处这边的"),
        (12, 8, 10, "zh", "小雪街道孔家村没水，水管裂了"),
        (12, 10, 0, "zh", "孔家村还是没水"),
    ],
    "h_water_lingcheng_other": [(12, 9, 0, "zh", "陵城镇自来水有漂白粉味")],
    "h_power_wucun": [
        (13, 13, 0, "zh", "吴村镇后店村变压器冒烟，全村停电了"),
        (13, 13, 20, "zh", "后店村停电了，变压器坏了，吴村的"),
        (13, 14, 0, "zh", "吴村镇后店村没电好一会儿了"),
    ],
    "h_rubbish_yan_temple": [
        (12, 10, 0, "zh", "颜庙门口的垃圾箱满了，游客的垃圾扔了一地"),
        (12, 13, 0, "en", "Rubbish bins outside the Yan Temple are overflowing."),
        (12, 16, 0, "ko", "안묘 입구 쓰레기통이 넘쳐요."),
        (13, 9, 0, "zh", "颜庙门口垃圾还是没清"),
    ],
    "h_noise_confucius_avenue": [
        (12, 22, 0, "zh", "孔子大道上晚上老有改装车飙车，轰得睡不着"),
        (13, 22, 30, "zh", "孔子大道半夜飙车的噪音太大了"),
        (
            13,
            23,
            0,
            "en",
            "Modified cars racing on Confucius Avenue late at night, extremely loud.",
        ),
    ],
    "h_stalls_gulou": [
        (13, 17, 0, "zh", "鼓楼大街晚上小吃摊占了半条路"),
        (13, 18, 0, "zh", "鼓楼大街小吃摊占道经营，游客走都走不动"),
        (13, 19, 0, "en", "Food stalls take up half of Gulou Street in the evening."),
    ],
    "h_wage_no_place": [(12, 16, 0, "zh", "我给一个老板装修干了一个月，他不给钱")],
    "h_manhole_louxiang": [
        (13, 8, 0, "zh", "陋巷街口的雨水井盖碎了一半"),
        (13, 9, 0, "zh", "陋巷街路口井盖碎了，小孩容易踩进去"),
        (13, 11, 0, "en", "A drain cover at the end of Louxiang Street is half broken."),
    ],
    "h_order_liaohe": [(13, 20, 0, "zh", "蓼河公园晚上有人钓鱼还往河里扔垃圾，管理员不管")],
    "h_consumer_no_place": [(13, 11, 0, "zh", "网上买的东西商家不给退货")],
    "h_transport_k02": [(13, 7, 0, "zh", "K02路公交司机开车打电话")],
    "h_healthcare_wucun": [(13, 9, 30, "zh", "吴村镇卫生院晚上没有医生值班")],
    "h_education_no_place": [(13, 10, 30, "zh", "孩子学校周六还补课收钱")],
    "h_other_animal": [(13, 15, 0, "zh", "时庄街道有条流浪狗咬了人")],
    "h_power_no_place": [(13, 16, 0, "zh", "我家电表跳闸了总是来回跳")],
    "h_light_dacheng_again": [
        (15, 20, 0, "zh", "大成路东段路灯又不亮了"),
        (15, 21, 0, "zh", "大成路东边路灯又坏了"),
    ],
}


def rows() -> list[dict[str, object]]:
    """Every report of every cluster, numbered in time order."""
    flat = []
    clusters = [("dev", CLUSTERS), ("heldout", HELDOUT)]
    for split, cluster, reports in ((s, c, r) for s, group in clusters for c, r in group.items()):
        for day, hour, minute, locale, text, *point in reports:
            row: dict[str, object] = {
                "cluster": cluster,
                "locale": LOCALES[locale],
                "text": text,
                "minutes": day * 1440 + hour * 60 + minute,
                "split": split,
            }
            if point:
                row["point"] = list(point[0])
            flat.append(row)
    flat.sort(key=lambda row: (row["minutes"], row["cluster"]))
    return [{"id": f"m{number:03d}", **row} for number, row in enumerate(flat, start=1)]


if __name__ == "__main__":
    lines = [json.dumps(row, ensure_ascii=False) for row in rows()]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} reports in {len(CLUSTERS) + len(HELDOUT)} clusters -> {OUT}")
